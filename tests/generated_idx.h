// A small generated IDX data set for tests that run the tools (`--data idx:DIR`): two
// classes separable by the mean brightness of the top half of a 28x28 image.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/random.h"
#include "datasets/idx.h"

namespace shrink::testing {

// Images `<prefix>-images-idx3-ubyte`, labels `<prefix>-labels-idx1-ubyte[.gz]`.
inline void write_idx_split(const std::filesystem::path& dir, const std::string& prefix, std::int64_t n,
                            Generator& gen, bool gzip_labels = false) {
  datasets::IdxArray images{{n, 28, 28}, std::vector<std::uint8_t>(n * 784)};
  datasets::IdxArray labels{{n}, std::vector<std::uint8_t>(n)};
  for (std::int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(gen.next_below(2));
    labels.data[i] = static_cast<std::uint8_t>(label);
    for (int p = 0; p < 784; ++p) {
      const bool bright = (p < 392) == (label == 1);
      images.data[i * 784 + p] = static_cast<std::uint8_t>(gen.next_below(100) + (bright ? 120 : 0));
    }
  }
  datasets::write_idx((dir / (prefix + "-images-idx3-ubyte")).string(), images);
  datasets::write_idx((dir / (prefix + (gzip_labels ? "-labels-idx1-ubyte.gz" : "-labels-idx1-ubyte"))).string(),
                      labels);
}

// train-* and t10k-* files in `dir`; returns the --data argument.
inline std::string write_idx_dataset(const std::filesystem::path& dir, std::int64_t train, std::int64_t test,
                                     std::uint64_t seed) {
  Generator gen(seed);
  write_idx_split(dir, "train", train, gen);
  write_idx_split(dir, "t10k", test, gen);
  return "idx:" + dir.string();
}

}  // namespace shrink::testing
