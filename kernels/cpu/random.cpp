// Philox-driven fills and dropout. Value i depends only on (seed, offset, i), so results are
// the same for any thread count and match the CUDA backend.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/philox.h"

namespace shrink::kernels::cpu {

void CpuBackend::random_uniform(DType t, std::int64_t n, double lo, double hi, std::uint64_t seed,
                                std::uint64_t offset, void* out) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    T* o = static_cast<T*>(out);
    const double span = hi - lo;
    // Rounding to T can land on hi (a draw just below 1 becomes 1.0f): keep [lo, hi).
    const T below_hi = hi > lo ? std::nextafter(static_cast<T>(hi), static_cast<T>(lo)) : static_cast<T>(lo);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) {
      const T v = static_cast<T>(std::fma(span, u32_to_unit_double(philox_u32(seed, offset, i)), lo));
      o[i] = v < static_cast<T>(hi) ? v : below_hi;
    }
  });
}

void CpuBackend::random_normal(DType t, std::int64_t n, double mean, double stddev,
                               std::uint64_t seed, std::uint64_t offset, void* out) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    T* o = static_cast<T*>(out);
    // Box-Muller: value i uses the 32-bit draws 2i and 2i+1 (the caller reserved 2n).
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) {
      const double u1 = 1.0 - u32_to_unit_double(philox_u32(seed, offset, 2 * i));  // (0, 1]
      const double u2 = u32_to_unit_double(philox_u32(seed, offset, 2 * i + 1));
      const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
      o[i] = static_cast<T>(std::fma(stddev, z, mean));  // fma: bitwise equal to the CUDA twin
    }
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
      const T m = u32_to_unit_float(philox_u32(seed, offset, i)) < keep_below ? scale : T(0);
      pm[i] = m;
      py[i] = px[i] * m;
    }
  });
}

}  // namespace shrink::kernels::cpu
