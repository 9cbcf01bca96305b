// Fused optimizer updates: one pass over a parameter reads its gradient and state once.
// The arithmetic is kernels/cpu/optim.cpp's, term for term, in the parameter's precision;
// the scalar factors are formed on the host in double exactly as the CPU forms them.
#include <cuda_runtime.h>

#include <cmath>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/launch.cuh"

namespace shrink::kernels::cuda {

namespace {

template <class T>
struct SgdScalars {
  T lr, wd, mom, damp;
  bool use_buf, first_step, nesterov;
};

// PyTorch's SGD: g += wd * w; buf = momentum * buf + (1 - dampening) * g (buf = g on the
// first step); step = nesterov ? g + momentum * buf : buf; w -= lr * step.
template <class T>
__global__ void sgd_kernel(std::int64_t n, SgdScalars<T> p, T* w, const T* g, T* buf) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) {
    const T wi = w[i];
    T gi = g[i] + p.wd * wi;
    if (p.use_buf) {
      const T b = p.first_step ? gi : p.mom * buf[i] + p.damp * gi;
      buf[i] = b;
      gi = p.nesterov ? gi + p.mom * b : b;
    }
    w[i] = wi - p.lr * gi;
  }
}

template <class T>
struct AdamWScalars {
  T b1, b2, eps, decay, step_size, inv_sqrt_bc2;
};

// AdamW (Loshchilov & Hutter 2019): decoupled decay w *= 1 - lr*wd, then the Adam step with
// bias-corrected moments: w -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
template <class T>
__global__ void adamw_kernel(std::int64_t n, AdamWScalars<T> p, T* w, const T* g, T* m, T* v) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) {
    const T gi = g[i];
    const T mi = p.b1 * m[i] + (T(1) - p.b1) * gi;
    const T vi = p.b2 * v[i] + (T(1) - p.b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * p.decay - p.step_size * mi / (sqrt(vi) * p.inv_sqrt_bc2 + p.eps);
  }
}

}  // namespace

void CudaBackend::sgd_step(DType t, std::int64_t n, const SgdParams& p, void* param,
                           const void* grad, void* momentum_buffer) {
  if (n <= 0) return;
  visit_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const SgdScalars<T> s{T(p.lr),
                          T(p.weight_decay),
                          T(p.momentum),
                          T(1 - p.dampening),
                          p.momentum != 0 && momentum_buffer != nullptr,
                          p.first_step,
                          p.nesterov};
    sgd_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        n, s, static_cast<T*>(param), static_cast<const T*>(grad),
        static_cast<T*>(momentum_buffer));
    check_launch("sgd_step");
  });
}

void CudaBackend::adamw_step(DType t, std::int64_t n, const AdamWParams& p, void* param,
                             const void* grad, void* exp_avg, void* exp_avg_sq) {
  if (n <= 0) return;
  visit_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const double bc1 = 1 - std::pow(p.beta1, static_cast<double>(p.step));
    const double bc2 = 1 - std::pow(p.beta2, static_cast<double>(p.step));
    const AdamWScalars<T> s{T(p.beta1),
                            T(p.beta2),
                            T(p.eps),
                            T(1 - p.lr * p.weight_decay),
                            T(p.lr / bc1),
                            T(1 / std::sqrt(bc2))};
    adamw_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        n, s, static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(exp_avg),
        static_cast<T*>(exp_avg_sq));
    check_launch("adamw_step");
  });
}

}  // namespace shrink::kernels::cuda
