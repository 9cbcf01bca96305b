// Philox-driven fills and dropout. The per-element formulas are kernels/formulas/random.h,
// the code the CPU backend runs too, so both devices draw the same numbers: uniform values
// and dropout masks bit for bit, normal values up to the last bit of the double-precision
// log/cos (CUDA's and glibc's differ by at most an ulp or two).
#include <cstdint>

#include "kernels/cuda/launch.cuh"
#include "kernels/formulas/random.h"

namespace shrink::kernels::cuda {

namespace {

template <class T>
__global__ void uniform_kernel(std::int64_t n, double lo, double span, T hi, T below_hi,
                               std::uint64_t seed, std::uint64_t offset, T* out) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step())
    out[i] = formulas::uniform_value<T>(seed, offset, static_cast<std::uint64_t>(i), lo, span, hi,
                                        below_hi);
}

template <class T>
__global__ void normal_kernel(std::int64_t n, double mean, double stddev, std::uint64_t seed,
                              std::uint64_t offset, T* out) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step())
    out[i] = formulas::normal_value<T>(seed, offset, static_cast<std::uint64_t>(i), mean, stddev);
}

template <class T>
__global__ void dropout_kernel(std::int64_t n, float keep_below, T scale, std::uint64_t seed,
                               std::uint64_t offset, const T* x, T* y, T* mask) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) {
    const T m =
        formulas::dropout_mask<T>(seed, offset, static_cast<std::uint64_t>(i), keep_below, scale);
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
    const T below_hi = formulas::uniform_below_hi<T>(lo, hi);
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
