// Grow-only, 64-byte aligned float scratch for packed GEMM operands (the micro-kernel loads
// packed panels with aligned AVX loads). Meant to be thread_local: packing buffers are reused
// across calls instead of being allocated, and page-faulted, in the hot path.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <new>

namespace shrink::kernels::cpu {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(ptr_); }

  // At least `floats` floats; the contents are unspecified after growth.
  float* get(std::int64_t floats) {
    if (floats > capacity_) {
      std::free(ptr_);
      const std::size_t bytes = (static_cast<std::size_t>(floats) * sizeof(float) + 63) & ~std::size_t{63};
      ptr_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (ptr_ == nullptr) {
        capacity_ = 0;
        throw std::bad_alloc();
      }
      capacity_ = floats;
    }
    return ptr_;
  }

 private:
  float* ptr_ = nullptr;
  std::int64_t capacity_ = 0;
};

}  // namespace shrink::kernels::cpu
