// A fixed random part of a split: training on fewer samples than a data set holds (a short
// fine-tune, a quick experiment) without a new data set on disk.
#pragma once
#include <cstdint>

#include "datasets/dataset.h"

namespace shrink::datasets {

// n samples of `split` (0 < n <= split.size()), the same for the same seed and different for
// another; kept in the split's order, so a loader sees them as it would the whole split. The
// subset's stream is derived from `seed` (core/random.h derive_seed): the run's own
// Generator(seed), its shuffles and its augmentation draw numbers unrelated to it.
Split random_subset(const Split& split, std::int64_t n, std::uint64_t seed);

}  // namespace shrink::datasets
