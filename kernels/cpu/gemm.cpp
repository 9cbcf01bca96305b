// CPU GEMM. sgemm follows the BLIS/GotoBLAS structure: B is packed per (kKC x kNC) block into
// kNR-wide panels shared by all threads, each thread packs its own (kMC x kKC) blocks of alpha*A
// into kMR-tall panels, and a 6x16 AVX2/FMA micro-kernel accumulates one C tile per call.
// dgemm is a plain blocked loop nest: it serves gradient checks, where clarity matters more.
#include "kernels/cpu/gemm.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <new>

#include "kernels/cpu/gemm_detail.h"

namespace shrink::kernels::cpu {
namespace {

using namespace gemm_detail;

// Grow-only, 64-byte aligned scratch. One per thread (thread_local): packing buffers are reused
// across calls instead of being allocated in the hot path.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(ptr_); }

  float* get(std::int64_t floats) {
    if (floats > capacity_) {
      std::free(ptr_);
      const std::size_t bytes = (static_cast<std::size_t>(floats) * sizeof(float) + 63) & ~std::size_t{63};
      ptr_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (ptr_ == nullptr) {
        capacity_ = 0;
        throw std::bad_alloc();
      }
      capacity_ = floats;
    }
    return ptr_;
  }

 private:
  float* ptr_ = nullptr;
  std::int64_t capacity_ = 0;
};

thread_local AlignedBuffer t_pack_a;
thread_local AlignedBuffer t_pack_b;

constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Stores one accumulator row: beta == 0 must not read C (it may hold NaN or garbage).
inline void store_row(float* c, __m256 acc, float beta) {
  if (beta == 0.0f) {
    _mm256_storeu_ps(c, acc);
  } else if (beta == 1.0f) {
    _mm256_storeu_ps(c, _mm256_add_ps(acc, _mm256_loadu_ps(c)));
  } else {
    _mm256_storeu_ps(c, _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(c), acc));
  }
}

// C[0:6, 0:16] = beta * C + A_panel * B_panel over kc steps. a: kc x 6, b: kc x 16, both packed.
inline void kernel_6x16(std::int64_t kc, const float* __restrict a, const float* __restrict b,
                        float* c, std::int64_t ldc, float beta) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

  // The C tile is touched only after the k loop; start pulling it in now.
  for (int i = 0; i < kMR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
  }

#define SHRINK_GEMM_STEP(P)                                              \
  {                                                                      \
    const __m256 b0 = _mm256_load_ps(b + (P) * kNR);                     \
    const __m256 b1 = _mm256_load_ps(b + (P) * kNR + 8);                 \
    __m256 av = _mm256_broadcast_ss(a + (P) * kMR + 0);                  \
    c00 = _mm256_fmadd_ps(av, b0, c00);                                  \
    c01 = _mm256_fmadd_ps(av, b1, c01);                                  \
    av = _mm256_broadcast_ss(a + (P) * kMR + 1);                         \
    c10 = _mm256_fmadd_ps(av, b0, c10);                                  \
    c11 = _mm256_fmadd_ps(av, b1, c11);                                  \
    av = _mm256_broadcast_ss(a + (P) * kMR + 2);                         \
    c20 = _mm256_fmadd_ps(av, b0, c20);                                  \
    c21 = _mm256_fmadd_ps(av, b1, c21);                                  \
    av = _mm256_broadcast_ss(a + (P) * kMR + 3);                         \
    c30 = _mm256_fmadd_ps(av, b0, c30);                                  \
    c31 = _mm256_fmadd_ps(av, b1, c31);                                  \
    av = _mm256_broadcast_ss(a + (P) * kMR + 4);                         \
    c40 = _mm256_fmadd_ps(av, b0, c40);                                  \
    c41 = _mm256_fmadd_ps(av, b1, c41);                                  \
    av = _mm256_broadcast_ss(a + (P) * kMR + 5);                         \
    c50 = _mm256_fmadd_ps(av, b0, c50);                                  \
    c51 = _mm256_fmadd_ps(av, b1, c51);                                  \
  }

  for (std::int64_t p = 0; p < kc; ++p) {
    SHRINK_GEMM_STEP(0)
    a += kMR;
    b += kNR;
  }
#undef SHRINK_GEMM_STEP

  store_row(c + 0 * ldc, c00, beta);
  store_row(c + 0 * ldc + 8, c01, beta);
  store_row(c + 1 * ldc, c10, beta);
  store_row(c + 1 * ldc + 8, c11, beta);
  store_row(c + 2 * ldc, c20, beta);
  store_row(c + 2 * ldc + 8, c21, beta);
  store_row(c + 3 * ldc, c30, beta);
  store_row(c + 3 * ldc + 8, c31, beta);
  store_row(c + 4 * ldc, c40, beta);
  store_row(c + 4 * ldc + 8, c41, beta);
  store_row(c + 5 * ldc, c50, beta);
  store_row(c + 5 * ldc + 8, c51, beta);
}

// Partial tile (rows < 6 or cols < 16): the padded panels are zero, so compute the full tile
// into a scratch block and merge only the valid part.
void edge_tile(std::int64_t kc, const float* a, const float* b, float* c, std::int64_t ldc,
               std::int64_t rows, std::int64_t cols, float beta) {
  alignas(64) float tile[kMR * kNR];
  kernel_6x16(kc, a, b, tile, kNR, 0.0f);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      float& dst = c[i * ldc + j];
      dst = (beta == 0.0f) ? tile[i * kNR + j] : beta * dst + tile[i * kNR + j];
    }
}

void scale_c(std::int64_t m, std::int64_t n, float beta, float* c, std::int64_t ldc) {
  if (beta == 1.0f) return;
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] = (beta == 0.0f) ? 0.0f : beta * c[i * ldc + j];
}

struct SgemmArgs {
  bool trans_a, trans_b;
  std::int64_t m, n, k;
  float alpha;
  const float* a;
  std::int64_t lda;
  const float* b;
  std::int64_t ldb;
  float beta;
  float* c;
  std::int64_t ldc;
};

// Packs rows [i0, i0 + mc) x k-range [p0, p0 + kc) of alpha * op(A) into consecutive panels.
void pack_a_block(const SgemmArgs& g, std::int64_t i0, std::int64_t mc, std::int64_t p0,
                  std::int64_t kc, float* dst) {
  for (std::int64_t ip = 0; ip < mc; ip += kMR) {
    const std::int64_t i = i0 + ip;
    const float* src = g.trans_a ? g.a + p0 * g.lda + i : g.a + i * g.lda + p0;
    pack_panel_a(src, g.lda, !g.trans_a, std::min(kMR, mc - ip), kc, g.alpha, dst + ip * kc);
  }
}

// One thread's share of the C rows [r0, r1) x B-block panels [jp0, jp1) for one (jc, pc) block.
void compute_block(const SgemmArgs& g, std::int64_t r0, std::int64_t r1, std::int64_t jc,
                   std::int64_t nc, std::int64_t jp0, std::int64_t jp1, std::int64_t pc,
                   std::int64_t kc, float beta, const float* bpack, float* apack) {
  for (std::int64_t ic = r0; ic < r1; ic += kMC) {
    const std::int64_t mc = std::min(kMC, r1 - ic);
    pack_a_block(g, ic, mc, pc, kc, apack);
    // jr outer / ir inner: the B micro-panel stays in L1 while A panels stream from L2.
    for (std::int64_t jp = jp0; jp < jp1; ++jp) {
      const std::int64_t j = jp * kNR;
      const std::int64_t cols = std::min(kNR, nc - j);
      const float* bp = bpack + jp * kc * kNR;
      for (std::int64_t ip = 0; ip < mc; ip += kMR) {
        const std::int64_t rows = std::min(kMR, mc - ip);
        float* cp = g.c + (ic + ip) * g.ldc + jc + j;
        if (rows == kMR && cols == kNR)
          kernel_6x16(kc, apack + ip * kc, bp, cp, g.ldc, beta);
        else
          edge_tile(kc, apack + ip * kc, bp, cp, g.ldc, rows, cols, beta);
      }
    }
  }
}

void sgemm_packed(const SgemmArgs& g, int nthreads) {
  const std::int64_t kc_max = std::min(kKC, g.k);
  const std::int64_t nc_max = std::min(kNC, ceil_div(g.n, kNR) * kNR);
  float* const bpack = t_pack_b.get(kc_max * nc_max);  // shared by the team
  const std::int64_t m_panels = ceil_div(g.m, kMR);
  // Split the dimension with more micro-panels: rows give each thread its own A blocks and
  // no redundant packing; columns suit short-and-wide C (e.g. a batch of 128 times a wide layer).
  const bool split_rows = m_panels >= ceil_div(nc_max, kNR);

#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
  {
    const std::int64_t tid = omp_get_thread_num();
    const std::int64_t nt = omp_get_num_threads();
    float* const apack = t_pack_a.get(kMC * kc_max);
    std::int64_t r0 = 0, r1 = g.m;
    if (split_rows) {
      r0 = std::min(g.m, m_panels * tid / nt * kMR);
      r1 = std::min(g.m, m_panels * (tid + 1) / nt * kMR);
    }
    for (std::int64_t jc = 0; jc < g.n; jc += kNC) {
      const std::int64_t nc = std::min(kNC, g.n - jc);
      const std::int64_t n_panels = ceil_div(nc, kNR);
      std::int64_t jp0 = 0, jp1 = n_panels;
      if (!split_rows) {
        jp0 = n_panels * tid / nt;
        jp1 = n_panels * (tid + 1) / nt;
      }
      for (std::int64_t pc = 0; pc < g.k; pc += kKC) {
        const std::int64_t kc = std::min(kKC, g.k - pc);
#pragma omp for schedule(static)
        for (std::int64_t jp = 0; jp < n_panels; ++jp) {
          const std::int64_t j = jc + jp * kNR;
          const float* src = g.trans_b ? g.b + j * g.ldb + pc : g.b + pc * g.ldb + j;
          pack_panel_b(src, g.ldb, g.trans_b, std::min(kNR, nc - jp * kNR), kc, bpack + jp * kc * kNR);
        }  // implicit barrier: the whole B block is packed before anyone uses it
        // Later k blocks accumulate onto what the first one wrote, in a fixed order per element.
        const float beta = (pc == 0) ? g.beta : 1.0f;
        compute_block(g, r0, r1, jc, nc, jp0, jp1, pc, kc, beta, bpack, apack);
#pragma omp barrier  // nobody repacks B while another thread still reads it
      }
    }
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
           float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
           float beta, float* c, std::int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  const SgemmArgs g{trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc};
  // Below ~64^3 multiply-adds the fork/join costs more than the second core gains; inside an
  // enclosing parallel region the caller already owns the cores.
  int nthreads = 1;
  if (m * n * k >= 64 * 64 * 64 && !omp_in_parallel())
    nthreads = std::max(1, omp_get_max_threads());
  sgemm_packed(g, nthreads);
}

void dgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
           double alpha, const double* a, std::int64_t lda, const double* b, std::int64_t ldb,
           double beta, double* c, std::int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      c[i * ldc + j] = (beta == 0.0) ? 0.0 : beta * c[i * ldc + j];
  if (k <= 0 || alpha == 0.0) return;
  auto A = [&](std::int64_t i, std::int64_t p) { return trans_a ? a[p * lda + i] : a[i * lda + p]; };
  auto B = [&](std::int64_t p, std::int64_t j) { return trans_b ? b[j * ldb + p] : b[p * ldb + j]; };
  // i-k-j order over blocks: the innermost loop walks a row of C (and of B when not transposed)
  // contiguously; blocking keeps the touched B block cache-resident across rows of C.
  constexpr std::int64_t kBlock = 64;
#pragma omp parallel for schedule(static) if (m * n * k >= 64 * 64 * 64)
  for (std::int64_t i0 = 0; i0 < m; i0 += kBlock) {
    for (std::int64_t p0 = 0; p0 < k; p0 += kBlock)
      for (std::int64_t j0 = 0; j0 < n; j0 += kBlock) {
        const std::int64_t i1 = std::min(m, i0 + kBlock), p1 = std::min(k, p0 + kBlock),
                           j1 = std::min(n, j0 + kBlock);
        for (std::int64_t i = i0; i < i1; ++i)
          for (std::int64_t p = p0; p < p1; ++p) {
            const double aip = alpha * A(i, p);
            double* crow = c + i * ldc;
            for (std::int64_t j = j0; j < j1; ++j) crow[j] += aip * B(p, j);
          }
      }
  }
}

}  // namespace shrink::kernels::cpu
