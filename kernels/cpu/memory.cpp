// Host memory: 64-byte aligned so AVX2 loads never split cache lines at a buffer start.
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels::cpu {

void* CpuBackend::allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const std::size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw std::bad_alloc();
  return p;
}

void CpuBackend::deallocate(void* ptr, std::size_t) { std::free(ptr); }

void CpuBackend::copy_from_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}
void CpuBackend::copy_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}
void CpuBackend::copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

void CpuBackend::fill(DType t, std::int64_t n, double value, void* out) {
  dispatch_all(t, [&](auto zero) {
    using T = decltype(zero);
    T* o = static_cast<T*>(out);
    const T v = static_cast<T>(value);
#pragma omp parallel for simd if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) o[i] = v;
  });
}

void CpuBackend::arange(DType t, std::int64_t n, void* out) {
  dispatch_all(t, [&](auto zero) {
    using T = decltype(zero);
    T* o = static_cast<T*>(out);
    for (std::int64_t i = 0; i < n; ++i) o[i] = static_cast<T>(i);
  });
}

void CpuBackend::cast(DType from, DType to, std::int64_t n, const void* in, void* out) {
  dispatch_all(from, [&](auto src_zero) {
    using S = decltype(src_zero);
    dispatch_all(to, [&](auto dst_zero) {
      using D = decltype(dst_zero);
      const S* i = static_cast<const S*>(in);
      D* o = static_cast<D*>(out);
#pragma omp parallel for simd if (n > kParallelGrain)
      for (std::int64_t k = 0; k < n; ++k) o[k] = static_cast<D>(i[k]);
    });
  });
}

}  // namespace shrink::kernels::cpu
