// Fused optimizer updates: one pass over a parameter reads its gradient and state once.
// The per-element update is kernels/formulas/optim.h (shared with CUDA).
#include "kernels/cpu/cpu_backend.h"
#include "kernels/formulas/optim.h"

namespace shrink::kernels::cpu {

void CpuBackend::sgd_step(DType t, std::int64_t n, const SgdParams& p, void* param,
                          const void* grad, void* momentum_buffer) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    T* w = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* buf = static_cast<T*>(momentum_buffer);
    const auto s = formulas::SgdScalars<T>::from(p, buf != nullptr);
    if (s.use_buf) {
#pragma omp parallel for simd schedule(static) firstprivate(s) if (n > kParallelGrain)
      for (std::int64_t i = 0; i < n; ++i) formulas::sgd_update<true>(s, i, w, g, buf);
    } else {
#pragma omp parallel for simd schedule(static) firstprivate(s) if (n > kParallelGrain)
      for (std::int64_t i = 0; i < n; ++i) formulas::sgd_update<false>(s, i, w, g, buf);
    }
  });
}

void CpuBackend::adamw_step(DType t, std::int64_t n, const AdamWParams& p, void* param,
                            const void* grad, void* exp_avg, void* exp_avg_sq) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    T* w = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* m = static_cast<T*>(exp_avg);
    T* v = static_cast<T*>(exp_avg_sq);
    const auto s = formulas::AdamWScalars<T>::from(p);
#pragma omp parallel for simd schedule(static) firstprivate(s) if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) formulas::adamw_update(s, i, w, g, m, v);
  });
}

}  // namespace shrink::kernels::cpu
