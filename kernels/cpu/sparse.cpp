// CSR SpMM / transposed SpMM / SDDMM for the sparse linear layer (see sparse.h).
// Every output element is written by one thread, summed in a fixed order: deterministic.
#include "kernels/cpu/sparse.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels::cpu {

// Batch rows per tile: 32 floats = four AVX2 accumulators per nonzero (eight for double),
// enough independent FMAs to hide their latency.
constexpr std::int64_t kTile = kSparseTile;

void row_times_tile(std::int64_t begin, std::int64_t end, const std::int64_t* col_idx, const double* values,
                    const double* xt, double* acc) {
  for (std::int64_t j = 0; j < kTile; ++j) acc[j] = 0;
  for (std::int64_t e = begin; e < end; ++e) {
    const double v = values[e];
    const double* xr = xt + col_idx[e] * kTile;
#pragma omp simd
    for (std::int64_t j = 0; j < kTile; ++j) acc[j] += v * xr[j];
  }
}

void row_times_tile(std::int64_t begin, std::int64_t end, const std::int64_t* col_idx, const float* values,
                    const float* xt, float* acc) {
  static_assert(kTile == 32, "four 8-float registers per tile");
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (std::int64_t e = begin; e < end; ++e) {
    const __m256 v = _mm256_set1_ps(values[e]);
    const float* xr = xt + col_idx[e] * kTile;
    a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr), a0);
    a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 8), a1);
    a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 16), a2);
    a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(xr + 24), a3);
  }
  _mm256_storeu_ps(acc, a0);
  _mm256_storeu_ps(acc + 8, a1);
  _mm256_storeu_ps(acc + 16, a2);
  _mm256_storeu_ps(acc + 24, a3);
}

namespace {

// dst (count, kTile) = src rows [n0, n0 + nb) of a (batch, count) matrix, transposed;
// lanes nb..kTile-1 are zero so the FMAs never read garbage.
template <class T>
void transpose_tile(const T* src, std::int64_t count, std::int64_t n0, std::int64_t nb, T* dst) {
  if (nb < kTile) std::fill(dst, dst + count * kTile, T(0));
  // Contiguous writes; the nb source rows are read as parallel sequential streams.
  const T* base = src + n0 * count;
  for (std::int64_t c = 0; c < count; ++c)
    for (std::int64_t n = 0; n < nb; ++n) dst[c * kTile + n] = base[n * count + c];
}

template <class T>
void forward_impl(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                  const std::int64_t* row_ptr, const std::int64_t* col_idx, const T* values,
                  const T* x, const T* bias, T* y) {
  const std::int64_t tiles = (batch + kTile - 1) / kTile;
  const std::int64_t nnz = row_ptr[rows];
  const bool parallel = batch * (nnz + rows) > kParallelGrain;
  // Few tiles (small batches): also split the rows so every thread has work.
  const std::int64_t threads = parallel ? omp_get_max_threads() : 1;
  const std::int64_t row_blocks = tiles >= threads ? 1 : std::min<std::int64_t>(rows, (threads + tiles - 1) / tiles);
  const std::int64_t rows_per_block = (rows + row_blocks - 1) / row_blocks;
#pragma omp parallel if (parallel)
  {
    std::vector<T> xt(static_cast<std::size_t>(cols * kTile));  // (cols, kTile)
#pragma omp for collapse(2) schedule(static)
    for (std::int64_t tile = 0; tile < tiles; ++tile)
      for (std::int64_t block = 0; block < row_blocks; ++block) {
        const std::int64_t n0 = tile * kTile, nb = std::min(kTile, batch - n0);
        transpose_tile(x, cols, n0, nb, xt.data());
        const std::int64_t r_end = std::min(rows, (block + 1) * rows_per_block);
        for (std::int64_t r = block * rows_per_block; r < r_end; ++r) {
          alignas(64) T acc[kTile];
          row_times_tile(row_ptr[r], row_ptr[r + 1], col_idx, values, xt.data(), acc);
          const T b = bias ? bias[r] : T(0);
          for (std::int64_t n = 0; n < nb; ++n) y[(n0 + n) * rows + r] = acc[n] + b;
        }
      }
  }
}

template <class T>
void backward_input_impl(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                         const std::int64_t* row_ptr, const std::int64_t* col_idx,
                         const T* values, const T* dy, T* dx) {
  const std::int64_t tiles = (batch + kTile - 1) / kTile;
  const bool parallel = batch * (row_ptr[rows] + cols) > kParallelGrain;
#pragma omp parallel if (parallel)
  {
    std::vector<T> dyt(static_cast<std::size_t>(rows * kTile));  // (rows, kTile)
    std::vector<T> dxt(static_cast<std::size_t>(cols * kTile));  // (cols, kTile)
#pragma omp for schedule(static)
    for (std::int64_t tile = 0; tile < tiles; ++tile) {
      const std::int64_t n0 = tile * kTile, nb = std::min(kTile, batch - n0);
      transpose_tile(dy, rows, n0, nb, dyt.data());
      std::fill(dxt.begin(), dxt.end(), T(0));
      // Row r scatters dy[:, r] * W[r, c] into column c: dx = dy W.
      for (std::int64_t r = 0; r < rows; ++r) {
        const T* d = dyt.data() + r * kTile;
        for (std::int64_t e = row_ptr[r]; e < row_ptr[r + 1]; ++e) {
          const T v = values[e];
          T* out = dxt.data() + col_idx[e] * kTile;
#pragma omp simd
          for (std::int64_t j = 0; j < kTile; ++j) out[j] += v * d[j];
        }
      }
      for (std::int64_t n = 0; n < nb; ++n) {
        T* row = dx + (n0 + n) * cols;
        for (std::int64_t c = 0; c < cols; ++c) row[c] = dxt[c * kTile + n];
      }
    }
  }
}

// dst (count, batch) = src (batch, count)^T.
template <class T>
void transpose(const T* src, std::int64_t batch, std::int64_t count, T* dst, bool parallel) {
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t c = 0; c < count; ++c)
    for (std::int64_t n = 0; n < batch; ++n) dst[c * batch + n] = src[n * count + c];
}

template <class T>
void sampled_gradient_impl(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                           const std::int64_t* row_ptr, const std::int64_t* col_idx,
                           const T* dy, const T* x, T* dvalues) {
  const bool parallel = batch * (row_ptr[rows] + cols) > kParallelGrain;
  // With the batch contiguous, each entry is one dot product of two rows.
  std::vector<T> xt(static_cast<std::size_t>(cols * batch));   // (cols, batch)
  std::vector<T> dyt(static_cast<std::size_t>(rows * batch));  // (rows, batch)
  transpose(x, batch, cols, xt.data(), parallel);
  transpose(dy, batch, rows, dyt.data(), parallel);
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* d = dyt.data() + r * batch;
    for (std::int64_t e = row_ptr[r]; e < row_ptr[r + 1]; ++e) {
      const T* xc = xt.data() + col_idx[e] * batch;
      T acc = T(0);
#pragma omp simd reduction(+ : acc)
      for (std::int64_t n = 0; n < batch; ++n) acc += d[n] * xc[n];
      dvalues[e] = acc;
    }
  }
}

}  // namespace

void csr_linear_forward(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                        const std::int64_t* row_ptr, const std::int64_t* col_idx,
                        const float* values, const float* x, const float* bias, float* y) {
  forward_impl(batch, rows, cols, row_ptr, col_idx, values, x, bias, y);
}
void csr_linear_forward(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                        const std::int64_t* row_ptr, const std::int64_t* col_idx,
                        const double* values, const double* x, const double* bias, double* y) {
  forward_impl(batch, rows, cols, row_ptr, col_idx, values, x, bias, y);
}

void csr_linear_backward_input(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                               const std::int64_t* row_ptr, const std::int64_t* col_idx,
                               const float* values, const float* dy, float* dx) {
  backward_input_impl(batch, rows, cols, row_ptr, col_idx, values, dy, dx);
}
void csr_linear_backward_input(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                               const std::int64_t* row_ptr, const std::int64_t* col_idx,
                               const double* values, const double* dy, double* dx) {
  backward_input_impl(batch, rows, cols, row_ptr, col_idx, values, dy, dx);
}

void csr_sampled_gradient(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                          const std::int64_t* row_ptr, const std::int64_t* col_idx,
                          const float* dy, const float* x, float* dvalues) {
  sampled_gradient_impl(batch, rows, cols, row_ptr, col_idx, dy, x, dvalues);
}
void csr_sampled_gradient(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                          const std::int64_t* row_ptr, const std::int64_t* col_idx,
                          const double* dy, const double* x, double* dvalues) {
  sampled_gradient_impl(batch, rows, cols, row_ptr, col_idx, dy, x, dvalues);
}

}  // namespace shrink::kernels::cpu
