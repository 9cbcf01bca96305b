// Philox-driven fills and dropout. Value i depends only on (seed, offset, i), so results are
// the same for any thread count and match the CUDA backend.
// The per-element formulas are kernels/formulas/random.h (shared with CUDA).
#include "kernels/cpu/cpu_backend.h"
#include "kernels/formulas/random.h"

namespace shrink::kernels::cpu {

void CpuBackend::random_uniform(DType t, std::int64_t n, double lo, double hi, std::uint64_t seed,
                                std::uint64_t offset, void* out) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    T* o = static_cast<T*>(out);
    const T below_hi = formulas::uniform_below_hi<T>(lo, hi), top = static_cast<T>(hi);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i)
      o[i] = formulas::uniform_value<T>(seed, offset, i, lo, hi - lo, top, below_hi);
  });
}

void CpuBackend::random_normal(DType t, std::int64_t n, double mean, double stddev,
                               std::uint64_t seed, std::uint64_t offset, void* out) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    T* o = static_cast<T*>(out);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i)
      o[i] = formulas::normal_value<T>(seed, offset, i, mean, stddev);
  });
}

void CpuBackend::dropout(DType t, std::int64_t n, double p, std::uint64_t seed,
                         std::uint64_t offset, const void* x, void* y, void* mask) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    T* pm = static_cast<T*>(mask);
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    const float keep_below = static_cast<float>(1.0 - p);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) {
      const T m = formulas::dropout_mask<T>(seed, offset, i, keep_below, scale);
      pm[i] = m;
      py[i] = px[i] * m;
    }
  });
}

}  // namespace shrink::kernels::cpu
