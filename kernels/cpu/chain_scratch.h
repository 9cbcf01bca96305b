// Scratch maps for the chain kernels (conv2d_residual_chain, inverted_residual_chain) where they
// run blocks apart through conv2d calls: a few fixed slots from the backend's allocator, each
// allocated when first asked for and freed when the chain returns.
#pragma once
#include <cstddef>

#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels::cpu {

// The bytes of a convolution's output (n, c_out, out_h, out_w) of dtype t: a scratch map's size.
inline std::size_t output_map_bytes(const Conv2dShape& s, DType t) {
  return static_cast<std::size_t>(s.n * s.c_out * s.out_h() * s.out_w()) * dtype_size(t);
}

class ChainScratch {
 public:
  static constexpr int kSlots = 4;
  explicit ChainScratch(CpuBackend& backend) : backend_(backend) {}
  ChainScratch(const ChainScratch&) = delete;
  ChainScratch& operator=(const ChainScratch&) = delete;
  ~ChainScratch() {
    for (int i = 0; i < kSlots; ++i) backend_.deallocate(p_[i], bytes_[i]);
  }
  // Slot `slot`, of `bytes` bytes: the same size on every call for that slot.
  void* get(int slot, std::size_t bytes) {
    if (!p_[slot]) p_[slot] = backend_.allocate(bytes_[slot] = bytes);
    return p_[slot];
  }
  // The map between two segments that is not `in` (slots 0 and 1 in turn).
  void* other_than(const void* in, std::size_t bytes) { return get(in == p_[0] ? 1 : 0, bytes); }

 private:
  CpuBackend& backend_;
  void* p_[kSlots] = {};
  std::size_t bytes_[kSlots] = {};
};

}  // namespace shrink::kernels::cpu
