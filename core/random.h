// Seeded random numbers. A Generator is a Philox4x32-10 stream (Salmon et al. 2011):
// counter-based, so a fill of n values at `offset` gives the same numbers on any device
// and with any thread count. Each draw advances the offset by the values consumed.
#pragma once
#include <cstdint>
#include <vector>

namespace shrink {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}
  // A stream resumed where a saved run left it (seed() and offset() as recorded).
  Generator(std::uint64_t seed, std::uint64_t offset) : seed_(seed), offset_(offset) {}
  std::uint64_t seed() const { return seed_; }
  std::uint64_t offset() const { return offset_; }
  // Reserves `n` values: returns the offset to pass to a kernel, then advances.
  std::uint64_t reserve(std::uint64_t n) {
    const std::uint64_t at = offset_;
    offset_ += (n + 3) / 4 * 4;  // Philox yields 4 values per counter
    return at;
  }
  // While fills are off, Tensor::uniform / Tensor::randn from this generator reserve their
  // values (the stream advances exactly as usual) but leave the tensor uninitialised: for
  // building a model whose values are about to be replaced by a checkpoint's, or never read
  // (a shape-only copy for cost counting). See FillsOff.
  bool fills() const { return fills_; }
  void set_fills(bool on) { fills_ = on; }
  // Host-side helpers for shuffling and sampling (same Philox stream).
  std::uint64_t next_u64();
  double next_double();                           // uniform in [0, 1)
  std::uint64_t next_below(std::uint64_t bound);  // uniform integer in [0, bound)

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
  bool fills_ = true;
};

// min(n, total) distinct indices of [0, total), drawn by a partial Fisher-Yates shuffle with
// `gen` (a seeded random subset, in draw order). n and total must not be negative.
std::vector<std::int64_t> sample_indices(std::int64_t total, std::int64_t n, Generator& gen);

// A seed for one use of a run's seed: `stream` names the use (shuffling, augmentation, a
// subset) and `index` its instance (an epoch). The SplitMix64 finaliser (Steele et al. 2014)
// spreads nearby (seed, index) pairs into unrelated Philox keys: each use draws numbers
// unrelated to the run's own Generator(seed) and to the other uses.
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t index, std::uint64_t stream);

// Turns a generator's fills off for a scope (Generator::set_fills), restoring them after.
class FillsOff {
 public:
  explicit FillsOff(Generator& gen) : gen_(gen), was_(gen.fills()) { gen.set_fills(false); }
  ~FillsOff() { gen_.set_fills(was_); }
  FillsOff(const FillsOff&) = delete;
  FillsOff& operator=(const FillsOff&) = delete;

 private:
  Generator& gen_;
  bool was_;
};

}  // namespace shrink
