// Seeded random numbers. A Generator is a Philox4x32-10 stream (Salmon et al. 2011):
// counter-based, so a fill of n values at `offset` gives the same numbers on any device
// and with any thread count. Each draw advances the offset by the values consumed.
#pragma once
#include <cstdint>

namespace shrink {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}
  std::uint64_t seed() const { return seed_; }
  std::uint64_t offset() const { return offset_; }
  // Reserves `n` values: returns the offset to pass to a kernel, then advances.
  std::uint64_t reserve(std::uint64_t n) {
    const std::uint64_t at = offset_;
    offset_ += (n + 3) / 4 * 4;  // Philox yields 4 values per counter
    return at;
  }
  // Host-side helpers for shuffling and sampling (same Philox stream).
  std::uint64_t next_u64();
  double next_double();                           // uniform in [0, 1)
  std::uint64_t next_below(std::uint64_t bound);  // uniform integer in [0, bound)

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};

}  // namespace shrink
