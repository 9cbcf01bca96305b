// Host memory. Buffers are 64-byte aligned so AVX2 loads never split cache lines at a
// buffer start. Large freed blocks are cached by size and handed out again (block_cache.h):
// a training step allocates the same activation and gradient sizes every time, and returning
// them to the OS would make every step pay page faults on fresh pages (about 8% of an
// ffn-10000 step before the cache).
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "kernels/cpu/block_cache.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/error.h"

namespace shrink::kernels::cpu {

namespace {

constexpr std::size_t kCacheMinBytes = 64 * 1024;         // smaller blocks: malloc is fast
constexpr std::size_t kHugePage = 2 * 1024 * 1024;

// Above this no block is ever handed out: the rounding below cannot wrap, and a size this
// large (from an overflowed or hostile shape) is refused by name instead of by malloc.
constexpr std::size_t kMaxBlockBytes = std::numeric_limits<std::size_t>::max() / 2;

// Under AddressSanitizer every block is exactly the size asked for and freed at once: the
// cache and the rounding would hide reads past a tensor's end and uses after free.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kExactBlocks = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kExactBlocks = true;
#else
constexpr bool kExactBlocks = false;
#endif
#else
constexpr bool kExactBlocks = false;
#endif

std::size_t rounded_size(std::size_t bytes) {
  if (kExactBlocks) return bytes;
  // Page-round large blocks so near-equal sizes share cache entries.
  return bytes >= kCacheMinBytes ? (bytes + 4095) / 4096 * 4096 : (bytes + 63) / 64 * 64;
}

// 64-byte aligned; posix_memalign (unlike aligned_alloc) takes any size, as exact blocks need.
// Blocks of 2 MiB and more start on a 2 MiB boundary and ask for transparent huge pages
// (where the kernel grants them only on request, THP "madvise"): one fault per 2 MiB instead
// of 512, and activations that the convolutions stride through span 512x fewer TLB entries.
void* aligned_block(std::size_t size) {
  void* p = nullptr;
  if (!kExactBlocks && size >= kHugePage) {
    if (posix_memalign(&p, kHugePage, size) != 0) return nullptr;
    madvise(p, size / kHugePage * kHugePage, MADV_HUGEPAGE);  // advice: refused is fine
    return p;
  }
  return posix_memalign(&p, 64, size) == 0 ? p : nullptr;
}

}  // namespace

void* CpuBackend::allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  if (bytes > kMaxBlockBytes)
    throw Error("cpu: cannot allocate " + std::to_string(bytes) + " bytes (more than any "
                "host memory holds; the limit is " + std::to_string(kMaxBlockBytes) + ")");
  const std::size_t size = rounded_size(bytes);
  if (!kExactBlocks && size >= kCacheMinBytes)
    if (void* p = host_block_cache().take(size)) return p;
  void* p = aligned_block(size);
  if (!p)
    throw Error("cpu: out of memory allocating " + std::to_string(size) + " bytes (" +
                std::to_string(host_block_cache().cached_bytes()) + " bytes idle in the block cache)");
  return p;
}

void CpuBackend::deallocate(void* ptr, std::size_t bytes) {
  if (!ptr) return;
  const std::size_t size = rounded_size(bytes);
  if (!kExactBlocks && size >= kCacheMinBytes) return host_block_cache().give(ptr, size);
  std::free(ptr);
}
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
