// Layer normalisation over the last axis of (rows, dim): a warp per row (a block for rows
// longer than rows::kWarpRowLimit), statistics in double as on the CPU, the per-element
// formulas shared with it (kernels/formulas/layer_norm.h). dgamma and dbeta: one thread per
// column summing its rows in order, so the result is deterministic.
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/row_reduce.cuh"
#include "kernels/formulas/layer_norm.h"

namespace shrink::kernels::cuda {

namespace {

template <class T, int kTpr>
__global__ void layer_norm_rows_kernel(std::int64_t rows_n, std::int64_t dim, double eps, const T* x,
                                       const T* gamma, const T* beta, T* y, T* mean, T* rstd) {
  using Loop = rows::RowLoop<kTpr>;
  __shared__ rows::SumAcc<double> scratch[32];
  for (std::int64_t row = Loop::first(); row < rows_n; row += Loop::step()) {
    const T* xr = x + row * dim;
    rows::SumAcc<double> sum{0.0};
    for (std::int64_t d = Loop::lane(); d < dim; d += kTpr) sum.v += static_cast<double>(xr[d]);
    const double mu = rows::group_reduce<kTpr>(sum, scratch).v / static_cast<double>(dim);
    rows::SumAcc<double> sq{0.0};
    for (std::int64_t d = Loop::lane(); d < dim; d += kTpr) {
      const double c = static_cast<double>(xr[d]) - mu;
      sq.v += c * c;
    }
    const double rs = 1.0 / sqrt(rows::group_reduce<kTpr>(sq, scratch).v / static_cast<double>(dim) + eps);
    if (Loop::lane() == 0) {
      mean[row] = static_cast<T>(mu);
      rstd[row] = static_cast<T>(rs);
    }
    T* yr = y + row * dim;
    for (std::int64_t d = Loop::lane(); d < dim; d += kTpr)
      yr[d] = formulas::layer_norm_output((static_cast<double>(xr[d]) - mu) * rs, gamma, beta, d);
  }
}

template <class T, int kTpr>
__global__ void layer_norm_backward_rows_kernel(std::int64_t rows_n, std::int64_t dim, const T* x,
                                                const T* gamma, const T* mean, const T* rstd, const T* dy,
                                                T* dx) {
  using Loop = rows::RowLoop<kTpr>;
  __shared__ rows::SumAcc<double> scratch[32];
  for (std::int64_t row = Loop::first(); row < rows_n; row += Loop::step()) {
    const T* xr = x + row * dim;
    const T* dyr = dy + row * dim;
    const double mu = static_cast<double>(mean[row]), rs = static_cast<double>(rstd[row]);
    rows::SumAcc<double> sum_g{0.0}, sum_gx{0.0};
    for (std::int64_t d = Loop::lane(); d < dim; d += kTpr) {
      const double g = formulas::layer_norm_g(dyr[d], gamma, d);
      sum_g.v += g;
      sum_gx.v += g * (static_cast<double>(xr[d]) - mu) * rs;
    }
    const double mean_g = rows::group_reduce<kTpr>(sum_g, scratch).v / static_cast<double>(dim);
    const double mean_gx = rows::group_reduce<kTpr>(sum_gx, scratch).v / static_cast<double>(dim);
    T* dxr = dx + row * dim;
    for (std::int64_t d = Loop::lane(); d < dim; d += kTpr)
      dxr[d] = static_cast<T>(formulas::layer_norm_dx(formulas::layer_norm_g(dyr[d], gamma, d),
                                                      (static_cast<double>(xr[d]) - mu) * rs, mean_g, mean_gx, rs));
  }
}

// dgamma[d] = sum_r dy[r, d] xhat[r, d], dbeta[d] = sum_r dy[r, d]; consecutive threads read
// consecutive columns of a row (coalesced).
template <class T>
__global__ void layer_norm_param_grad_kernel(std::int64_t rows_n, std::int64_t dim, const T* x, const T* mean,
                                             const T* rstd, const T* dy, T* dgamma, T* dbeta) {
  for (std::int64_t d = grid_start(); d < dim; d += grid_step()) {
    double sg = 0.0, sb = 0.0;
    for (std::int64_t r = 0; r < rows_n; ++r) {
      const double g = static_cast<double>(dy[r * dim + d]);
      sg += g * (static_cast<double>(x[r * dim + d]) - static_cast<double>(mean[r])) * static_cast<double>(rstd[r]);
      sb += g;
    }
    if (dgamma) dgamma[d] = static_cast<T>(sg);
    if (dbeta) dbeta[d] = static_cast<T>(sb);
  }
}

}  // namespace

void CudaBackend::layer_norm(DType t, std::int64_t rows_n, std::int64_t dim, double eps, const void* x,
                             const void* gamma, const void* beta, void* y, void* mean, void* rstd) {
  if (rows_n <= 0 || dim <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    rows::launch_rows(rows_n, dim, [&](auto tpr, unsigned grid, unsigned block) {
      layer_norm_rows_kernel<T, decltype(tpr)::value><<<grid, block, 0, stream()>>>(
          rows_n, dim, eps, static_cast<const T*>(x), static_cast<const T*>(gamma), static_cast<const T*>(beta),
          static_cast<T*>(y), static_cast<T*>(mean), static_cast<T*>(rstd));
    });
    check_launch("layer_norm");
  });
}

void CudaBackend::layer_norm_backward(DType t, std::int64_t rows_n, std::int64_t dim, const void* x,
                                      const void* gamma, const void* mean, const void* rstd, const void* dy,
                                      void* dx, void* dgamma, void* dbeta) {
  if (rows_n <= 0 || dim <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xt = static_cast<const T*>(x);
    const T* mt = static_cast<const T*>(mean);
    const T* rt = static_cast<const T*>(rstd);
    const T* dyt = static_cast<const T*>(dy);
    rows::launch_rows(rows_n, dim, [&](auto tpr, unsigned grid, unsigned block) {
      layer_norm_backward_rows_kernel<T, decltype(tpr)::value><<<grid, block, 0, stream()>>>(
          rows_n, dim, xt, static_cast<const T*>(gamma), mt, rt, dyt, static_cast<T*>(dx));
    });
    check_launch("layer_norm_backward");
    if (dgamma || dbeta) {
      layer_norm_param_grad_kernel<<<blocks_for(dim), kThreadsPerBlock, 0, stream()>>>(
          rows_n, dim, xt, mt, rt, dyt, static_cast<T*>(dgamma), static_cast<T*>(dbeta));
      check_launch("layer_norm_backward (gamma, beta)");
    }
  });
}

}  // namespace shrink::kernels::cuda
