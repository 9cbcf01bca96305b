// Layer normalisation over the last axis of (rows, dim): one row per iteration of a parallel
// loop, statistics in double (kernels/formulas/layer_norm.h). dgamma and dbeta sum over rows
// in fixed chunks of kChunkRows whose partial sums are then added in chunk order, so the
// result does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/formulas/layer_norm.h"

namespace shrink::kernels::cpu {

namespace {

constexpr std::int64_t kChunkRows = 64;

template <class T>
void layer_norm_typed(std::int64_t rows, std::int64_t dim, double eps, const T* x, const T* gamma,
                      const T* beta, T* y, T* mean, T* rstd) {
#pragma omp parallel for schedule(static) if (rows * dim > kParallelGrain)
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * dim;
    // The reductions vectorise (omp simd): lanes of partial sums in double, combined in an
    // order fixed at compile time, so the thread count still never changes a bit.
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (std::int64_t d = 0; d < dim; ++d) sum += static_cast<double>(xr[d]);
    const double mu = sum / static_cast<double>(dim);
    double sq = 0;
#pragma omp simd reduction(+ : sq)
    for (std::int64_t d = 0; d < dim; ++d) {
      const double c = static_cast<double>(xr[d]) - mu;
      sq += c * c;
    }
    const double rs = 1.0 / std::sqrt(sq / static_cast<double>(dim) + eps);
    mean[r] = static_cast<T>(mu);
    rstd[r] = static_cast<T>(rs);
    T* yr = y + r * dim;
#pragma omp simd
    for (std::int64_t d = 0; d < dim; ++d)
      yr[d] = formulas::layer_norm_output((static_cast<double>(xr[d]) - mu) * rs, gamma, beta, d);
  }
}

template <class T>
void layer_norm_backward_typed(std::int64_t rows, std::int64_t dim, const T* x, const T* gamma,
                               const T* mean, const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta) {
#pragma omp parallel for schedule(static) if (rows * dim > kParallelGrain)
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * dim;
    const T* dyr = dy + r * dim;
    const double mu = static_cast<double>(mean[r]), rs = static_cast<double>(rstd[r]);
    double sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
    for (std::int64_t d = 0; d < dim; ++d) {
      const double g = formulas::layer_norm_g(dyr[d], gamma, d);
      sum_g += g;
      sum_gx += g * (static_cast<double>(xr[d]) - mu) * rs;
    }
    const double mean_g = sum_g / static_cast<double>(dim), mean_gx = sum_gx / static_cast<double>(dim);
    T* dxr = dx + r * dim;
#pragma omp simd
    for (std::int64_t d = 0; d < dim; ++d)
      dxr[d] = static_cast<T>(formulas::layer_norm_dx(formulas::layer_norm_g(dyr[d], gamma, d),
                                                      (static_cast<double>(xr[d]) - mu) * rs, mean_g, mean_gx, rs));
  }
  if (!dgamma && !dbeta) return;
  const std::int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  // partial[c][0][d]: chunk c's sum of dy xhat; partial[c][1][d]: its sum of dy.
  std::vector<double> partial(static_cast<std::size_t>(chunks * 2 * dim), 0.0);
#pragma omp parallel for schedule(static) if (rows * dim > kParallelGrain)
  for (std::int64_t c = 0; c < chunks; ++c) {
    double* pg = partial.data() + c * 2 * dim;
    double* pb = pg + dim;
    for (std::int64_t r = c * kChunkRows; r < std::min(rows, (c + 1) * kChunkRows); ++r) {
      const double mu = static_cast<double>(mean[r]), rs = static_cast<double>(rstd[r]);
      for (std::int64_t d = 0; d < dim; ++d) {
        const double g = static_cast<double>(dy[r * dim + d]);
        pg[d] += g * (static_cast<double>(x[r * dim + d]) - mu) * rs;
        pb[d] += g;
      }
    }
  }
  for (std::int64_t d = 0; d < dim; ++d) {
    double sg = 0, sb = 0;
    for (std::int64_t c = 0; c < chunks; ++c) {
      sg += partial[static_cast<std::size_t>(c * 2 * dim + d)];
      sb += partial[static_cast<std::size_t>(c * 2 * dim + dim + d)];
    }
    if (dgamma) dgamma[d] = static_cast<T>(sg);
    if (dbeta) dbeta[d] = static_cast<T>(sb);
  }
}

}  // namespace

void CpuBackend::layer_norm(DType t, std::int64_t rows, std::int64_t dim, double eps, const void* x,
                            const void* gamma, const void* beta, void* y, void* mean, void* rstd) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    layer_norm_typed(rows, dim, eps, static_cast<const T*>(x), static_cast<const T*>(gamma),
                     static_cast<const T*>(beta), static_cast<T*>(y), static_cast<T*>(mean),
                     static_cast<T*>(rstd));
  });
}

void CpuBackend::layer_norm_backward(DType t, std::int64_t rows, std::int64_t dim, const void* x,
                                     const void* gamma, const void* mean, const void* rstd,
                                     const void* dy, void* dx, void* dgamma, void* dbeta) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    layer_norm_backward_typed(rows, dim, static_cast<const T*>(x), static_cast<const T*>(gamma),
                              static_cast<const T*>(mean), static_cast<const T*>(rstd),
                              static_cast<const T*>(dy), static_cast<T*>(dx), static_cast<T*>(dgamma),
                              static_cast<T*>(dbeta));
  });
}

}  // namespace shrink::kernels::cpu
