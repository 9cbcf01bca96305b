// Fused optimizer updates: one pass over a parameter reads its gradient and state once.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels::cpu {

// PyTorch's SGD: g += wd * w; buf = momentum * buf + (1 - dampening) * g (buf = g on the
// first step); step = nesterov ? g + momentum * buf : buf; w -= lr * step.
void CpuBackend::sgd_step(DType t, std::int64_t n, const SgdParams& p, void* param,
                          const void* grad, void* momentum_buffer) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    T* w = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* buf = static_cast<T*>(momentum_buffer);
    const T lr = T(p.lr), wd = T(p.weight_decay), mom = T(p.momentum), damp = T(1 - p.dampening);
    const bool use_buf = p.momentum != 0 && buf != nullptr;
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) {
      T gi = g[i] + wd * w[i];
      if (use_buf) {
        const T b = p.first_step ? gi : mom * buf[i] + damp * gi;
        buf[i] = b;
        gi = p.nesterov ? gi + mom * b : b;
      }
      w[i] -= lr * gi;
    }
  });
}

// AdamW (Loshchilov & Hutter 2019): decoupled decay w *= 1 - lr*wd, then the Adam step with
// bias-corrected moments.
void CpuBackend::adamw_step(DType t, std::int64_t n, const AdamWParams& p, void* param,
                            const void* grad, void* exp_avg, void* exp_avg_sq) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    T* w = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* m = static_cast<T*>(exp_avg);
    T* v = static_cast<T*>(exp_avg_sq);
    const double bc1 = 1 - std::pow(p.beta1, static_cast<double>(p.step));
    const double bc2 = 1 - std::pow(p.beta2, static_cast<double>(p.step));
    const T b1 = T(p.beta1), b2 = T(p.beta2), eps = T(p.eps);
    const T decay = T(1 - p.lr * p.weight_decay), step_size = T(p.lr / bc1);
    const T inv_sqrt_bc2 = T(1 / std::sqrt(bc2));
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) {
      const T gi = g[i];
      m[i] = b1 * m[i] + (T(1) - b1) * gi;
      v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
      w[i] = w[i] * decay - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
    }
  });
}

}  // namespace shrink::kernels::cpu
