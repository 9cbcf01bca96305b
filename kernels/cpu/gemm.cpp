// CPU GEMM. sgemm follows the BLIS/GotoBLAS structure: B is packed per (kKC x kNC) block into
// kNR-wide panels, alpha*A per (kMC x kKC) block into kMR-tall panels (or read in place when C
// is narrow, kInPlaceMaxN), and a 6x16 AVX2/FMA micro-kernel accumulates one C tile per call.
// With two threads, C is cut into two independent slices (see slice()), each thread packing
// into its own buffers.
// dgemm is a plain blocked loop nest: it serves gradient checks, where clarity matters more.
#include "kernels/cpu/gemm.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/gemm_detail.h"
#include "kernels/cpu/tiling.h"

namespace shrink::kernels::cpu {
namespace {

using namespace gemm_detail;

// Packing buffers, one pair per thread.
thread_local AlignedBuffer t_pack_a;
thread_local AlignedBuffer t_pack_b;

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

// Where the micro-kernel reads A: element (i, p) of the panel at a[i * row + p * step]. A packed
// panel has row 1 and step kMR; A read where it lies has row lda and step 1 (A stored row-major)
// or row 1 and step lda (A stored transposed).
struct APanel {
  const float* a;
  std::int64_t row, step;
};

// C[0:R, 0:16] = beta * C + A_panel * B_panel over kc steps. b: kc x kNR, packed; a: packed
// (kc x kMR, rows past R are padding) when `Packed`, else any APanel (only rows < R are read).
// R < kMR serves the bottom edge of C without a scratch tile; the fully unrolled loops keep all
// 2R accumulators in registers.
template <int R, bool Packed>
inline void kernel_rx16(std::int64_t kc, APanel ap, const float* __restrict b, float* c, std::int64_t ldc,
                        float beta) {
  __m256 acc[R][2];
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();

  // The C tile is touched only after the k loop; start pulling it in now.
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
  }
  const float* __restrict a = ap.a;
  const std::int64_t row = Packed ? 1 : ap.row, step = Packed ? kMR : ap.step;
  for (std::int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * row);
      acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
    }
    a += step;
    b += kNR;
  }
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    store_row(c + i * ldc, acc[i][0], beta);
    store_row(c + i * ldc + 8, acc[i][1], beta);
  }
}

template <bool Packed>
void kernel_rows(int rows, std::int64_t kc, APanel a, const float* b, float* c, std::int64_t ldc, float beta) {
  switch (rows) {
    case 1: return kernel_rx16<1, Packed>(kc, a, b, c, ldc, beta);
    case 2: return kernel_rx16<2, Packed>(kc, a, b, c, ldc, beta);
    case 3: return kernel_rx16<3, Packed>(kc, a, b, c, ldc, beta);
    case 4: return kernel_rx16<4, Packed>(kc, a, b, c, ldc, beta);
    case 5: return kernel_rx16<5, Packed>(kc, a, b, c, ldc, beta);
    default: return kernel_rx16<kMR, Packed>(kc, a, b, c, ldc, beta);
  }
}

// One C tile of rows <= kMR and cols <= kNR. Full-width tiles go straight to C; narrower ones
// compute the tile's rows (the padded panel columns are zero) into a scratch block and merge
// the valid part.
template <bool Packed>
void multiply_tile(std::int64_t kc, APanel a, const float* b, float* c, std::int64_t ldc, std::int64_t rows,
                   std::int64_t cols, float beta) {
  if (cols == kNR) return kernel_rows<Packed>(static_cast<int>(rows), kc, a, b, c, ldc, beta);
  alignas(64) float tile[kMR * kNR];
  kernel_rows<Packed>(static_cast<int>(rows), kc, a, b, tile, kNR, 0.0f);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      float& dst = c[i * ldc + j];
      dst = (beta == 0.0f) ? tile[i * kNR + j] : beta * dst + tile[i * kNR + j];
    }
}

}  // namespace

void gemm_detail::multiply_panels(std::int64_t kc, const float* a, const float* b, float* c,
                                  std::int64_t ldc, std::int64_t rows, std::int64_t cols, float beta) {
  multiply_tile<true>(kc, {a, 1, kMR}, b, c, ldc, rows, cols, beta);
}

namespace {

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

// Up to this many columns of C (4 B micro-panels) the micro-kernel reads A where it lies
// instead of packing it (with alpha == 1): packing copies each element of A once for every
// kNC columns and pays off over many B micro-panels; over a few it is a large share of the
// work: bench_gemm, two threads, min of 3 interleaved rounds, packed -> in place:
// resnet20.stem.bwd_weight 16x27x4096 95.1 -> 67.2 us, mobilenetv2.expand24-144.bwd_weight
// 144x24x4096 268 -> 239 us, sgemm_small 128x10x100 6.1 -> 5.1 us. On wide C, reading A in place
// measured no faster (encoder GEMMs at n = 128 and 512: within 2%) and up to 20% slower where A
// is stored transposed and k is short (resnet20.layer2.bwd_input 288x256x32, one thread).
constexpr std::int64_t kInPlaceMaxN = 4 * kNR;

// C[:, jc:jc+nc] (+)= op(A)[:, pc:pc+kc] * packed B block, one kMC row block at a time, A packed
// or in place (rows lda apart, or columns for op = T). B is always packed: its micro-panel is
// reread for every row panel and must sit in L1 without set conflicts.
void compute_block(const SgemmArgs& g, std::int64_t jc, std::int64_t nc, std::int64_t pc,
                   std::int64_t kc, float beta, const float* bpack, float* apack) {
  const bool packed = g.alpha != 1.0f || g.n > kInPlaceMaxN;
  for (std::int64_t ic = 0; ic < g.m; ic += kMC) {
    const std::int64_t mc = std::min(kMC, g.m - ic);
    if (packed) pack_a_block(g, ic, mc, pc, kc, apack);
    // jr outer / ir inner: the B micro-panel stays in L1 while A panels stream from L2.
    for (std::int64_t j = 0; j < nc; j += kNR) {
      const std::int64_t cols = std::min(kNR, nc - j);
      const float* bp = bpack + j * kc;
      for (std::int64_t ip = 0; ip < mc; ip += kMR) {
        const std::int64_t rows = std::min(kMR, mc - ip), i = ic + ip;
        float* c = g.c + i * g.ldc + jc + j;
        if (packed)
          multiply_tile<true>(kc, {apack + ip * kc, 1, kMR}, bp, c, g.ldc, rows, cols, beta);
        else if (g.trans_a)
          multiply_tile<false>(kc, {g.a + pc * g.lda + i, 1, g.lda}, bp, c, g.ldc, rows, cols, beta);
        else
          multiply_tile<false>(kc, {g.a + i * g.lda + pc, g.lda, 1}, bp, c, g.ldc, rows, cols, beta);
      }
    }
  }
}

// Serial blocked GEMM over the whole of g (which may be one thread's slice of the caller's C).
void sgemm_serial(const SgemmArgs& g) {
  const std::int64_t kc_max = std::min(kKC, g.k);
  float* const apack = t_pack_a.get(kMC * kc_max);
  float* const bpack = t_pack_b.get(kc_max * std::min(kNC, ceil_div(g.n, kNR) * kNR));
  for (std::int64_t jc = 0; jc < g.n; jc += kNC) {
    const std::int64_t nc = std::min(kNC, g.n - jc);
    const std::int64_t n_panels = ceil_div(nc, kNR);
    for (std::int64_t pc = 0; pc < g.k; pc += kKC) {
      const std::int64_t kc = std::min(kKC, g.k - pc);
      for (std::int64_t jp = 0; jp < n_panels; ++jp) {
        const std::int64_t j = jc + jp * kNR;
        const float* src = g.trans_b ? g.b + j * g.ldb + pc : g.b + pc * g.ldb + j;
        pack_panel_b(src, g.ldb, g.trans_b, std::min(kNR, nc - jp * kNR), kc, bpack + jp * kc * kNR);
      }
      // Later k blocks accumulate onto what the first one wrote.
      const float beta = (pc == 0) ? g.beta : 1.0f;
      compute_block(g, jc, nc, pc, kc, beta, bpack, apack);
    }
  }
}

// Slice `part` of `parts` of C, cut along its longer side in whole micro-panels. Each slice is
// an independent GEMM: a thread that the OS preempts (two vCPUs are easily oversubscribed)
// delays only its own slice, never the other thread through barriers. The price is packing
// the operand along the shorter side once per slice, about 1/max(m, n) of the work.
SgemmArgs slice(const SgemmArgs& g, std::int64_t part, std::int64_t parts) {
  SgemmArgs s = g;
  if (ceil_div(g.m, kMR) >= ceil_div(g.n, kNR)) {
    const std::int64_t panels = ceil_div(g.m, kMR);
    const std::int64_t r0 = std::min(g.m, panels * part / parts * kMR);
    const std::int64_t r1 = std::min(g.m, panels * (part + 1) / parts * kMR);
    s.m = r1 - r0;
    s.a = g.trans_a ? g.a + r0 : g.a + r0 * g.lda;
    s.c = g.c + r0 * g.ldc;
  } else {
    const std::int64_t panels = ceil_div(g.n, kNR);
    const std::int64_t c0 = std::min(g.n, panels * part / parts * kNR);
    const std::int64_t c1 = std::min(g.n, panels * (part + 1) / parts * kNR);
    s.n = c1 - c0;
    s.b = g.trans_b ? g.b + c0 * g.ldb : g.b + c0;
    s.c = g.c + c0;
  }
  return s;
}

void sgemm_parallel(const SgemmArgs& g, int nthreads) {
  if (nthreads <= 1) {
    sgemm_serial(g);
    return;
  }
#pragma omp parallel num_threads(nthreads)
  {
    // Fixed slice per thread number: every element of C has one owner and a fixed k order.
    const SgemmArgs s = slice(g, omp_get_thread_num(), omp_get_num_threads());
    if (s.m > 0 && s.n > 0) sgemm_serial(s);
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
  sgemm_parallel(g, nthreads);
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
