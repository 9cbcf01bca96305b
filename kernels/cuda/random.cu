// Philox-driven fills and dropout. Value i depends only on (seed, offset, i) through
// kernels/philox.h, the header the CPU backend uses too, so both devices draw the same
// numbers: uniform values and dropout masks bit for bit, normal values up to the last bit
// of the double-precision log/cos (CUDA's and glibc's differ by at most an ulp or two).
//
// The arithmetic is written as the CPU build compiles it: GCC (-O3 -mfma) contracts
// `lo + span * u` and `mean + stddev * z` into one fused multiply-add, so these use fma()
// explicitly; nvcc would otherwise choose for itself.
#include <cmath>
#include <cstdint>

#include "kernels/cuda/launch.cuh"
#include "kernels/philox.h"

namespace shrink::kernels::cuda {

namespace {

template <class T>
__global__ void uniform_kernel(std::int64_t n, double lo, double span, T hi, T below_hi,
                               std::uint64_t seed, std::uint64_t offset, T* out) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) {
    const double u = u32_to_unit_double(philox_u32(seed, offset, static_cast<std::uint64_t>(i)));
    const T v = static_cast<T>(fma(span, u, lo));
    out[i] = v < hi ? v : below_hi;
  }
}

template <class T>
__global__ void normal_kernel(std::int64_t n, double mean, double stddev, std::uint64_t seed,
                              std::uint64_t offset, T* out) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) {
    // Box-Muller: value i uses the 32-bit draws 2i and 2i+1 (the caller reserved 2n).
    const std::uint64_t k = 2 * static_cast<std::uint64_t>(i);
    const double u1 = 1.0 - u32_to_unit_double(philox_u32(seed, offset, k));  // (0, 1]
    const double u2 = u32_to_unit_double(philox_u32(seed, offset, k + 1));
    const double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    out[i] = static_cast<T>(fma(z, stddev, mean));
  }
}

template <class T>
__global__ void dropout_kernel(std::int64_t n, float keep_below, T scale, std::uint64_t seed,
                               std::uint64_t offset, const T* x, T* y, T* mask) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) {
    const float u = u32_to_unit_float(philox_u32(seed, offset, static_cast<std::uint64_t>(i)));
    const T m = u < keep_below ? scale : T(0);
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

}  // namespace

void CudaBackend::random_uniform(DType t, std::int64_t n, double lo, double hi,
                                 std::uint64_t seed, std::uint64_t offset, void* out) {
  if (n <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    // Rounding to T can land on hi (a draw just below 1 becomes 1.0f): keep [lo, hi). The
    // bound is computed on the host exactly as the CPU backend computes it.
    const T below_hi =
        hi > lo ? std::nextafter(static_cast<T>(hi), static_cast<T>(lo)) : static_cast<T>(lo);
    uniform_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        n, lo, hi - lo, static_cast<T>(hi), below_hi, seed, offset, static_cast<T*>(out));
  });
  check_launch("random_uniform");
}

void CudaBackend::random_normal(DType t, std::int64_t n, double mean, double stddev,
                                std::uint64_t seed, std::uint64_t offset, void* out) {
  if (n <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    normal_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(n, mean, stddev, seed,
                                                                        offset, static_cast<T*>(out));
  });
  check_launch("random_normal");
}

void CudaBackend::dropout(DType t, std::int64_t n, double p, std::uint64_t seed,
                          std::uint64_t offset, const void* x, void* y, void* mask) {
  if (n <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    const float keep_below = static_cast<float>(1.0 - p);
    dropout_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        n, keep_below, scale, seed, offset, static_cast<const T*>(x), static_cast<T*>(y),
        static_cast<T*>(mask));
  });
  check_launch("dropout");
}

}  // namespace shrink::kernels::cuda
