// Fused optimizer updates: one pass over a parameter reads its gradient and state once.
// The per-element update and its host-formed scalars are kernels/formulas/optim.h, the same
// code the CPU runs, in the parameter's precision.
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/formulas/optim.h"

namespace shrink::kernels::cuda {

namespace {

template <bool kUseBuf, class T>
__global__ void sgd_kernel(std::int64_t n, formulas::SgdScalars<T> p, T* w, const T* g, T* buf) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step())
    formulas::sgd_update<kUseBuf>(p, i, w, g, buf);
}

template <class T>
__global__ void adamw_kernel(std::int64_t n, formulas::AdamWScalars<T> p, T* w, const T* g, T* m,
                             T* v) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step())
    formulas::adamw_update(p, i, w, g, m, v);
}

}  // namespace

void CudaBackend::sgd_step(DType t, std::int64_t n, const SgdParams& p, void* param,
                           const void* grad, void* momentum_buffer) {
  if (n <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const auto s = formulas::SgdScalars<T>::from(p, momentum_buffer != nullptr);
    T* w = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* buf = static_cast<T*>(momentum_buffer);
    if (s.use_buf)
      sgd_kernel<true><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(n, s, w, g, buf);
    else
      sgd_kernel<false><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(n, s, w, g, buf);
    check_launch("sgd_step");
  });
}

void CudaBackend::adamw_step(DType t, std::int64_t n, const AdamWParams& p, void* param,
                             const void* grad, void* exp_avg, void* exp_avg_sq) {
  if (n <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const auto s = formulas::AdamWScalars<T>::from(p);
    adamw_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        n, s, static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(exp_avg),
        static_cast<T*>(exp_avg_sq));
    check_launch("adamw_step");
  });
}

}  // namespace shrink::kernels::cuda
