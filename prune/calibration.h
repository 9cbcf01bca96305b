// Sampling the calibration batch the criteria see. prune/ does not include datasets/
// (DESIGN.md), so it takes the training split's tensors.
#pragma once
#include <cstdint>

#include "core/random.h"
#include "core/tensor.h"
#include "prune/criteria.h"

namespace shrink::prune {

// min(n, N) samples of (inputs (N, ...), labels (N)) chosen by a partial Fisher-Yates
// shuffle with `gen` (a seeded random subset, in draw order), moved to `device`.
Calibration sample_calibration(const Tensor& inputs, const Tensor& labels, std::int64_t n, Generator& gen,
                               Device device);

}  // namespace shrink::prune
