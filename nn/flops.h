// The FLOP convention every report in shrink uses (nn/ layers implement it through
// Module::flops, prune/ reports quote it):
//   - one multiply-add counts as 2 FLOPs, so a Linear costs 2*in*out per sample, plus
//     `out` for its bias add (and a conv 2*k*k*(in/groups)*out per output position, plus
//     `out` per position for a bias);
//   - activations, dropout, flatten and other elementwise work count 0 (memory-bound,
//     and negligible beside the products);
//   - counts are per sample: the batch axis is not part of `sample_shape`.
// So lenet-300-100 costs 2*(784*300 + 300*100 + 100*10) + (300 + 100 + 10) = 532,810.
#pragma once
#include <cstdint>

#include "nn/module.h"

namespace shrink::nn {

// FLOPs of one forward pass of one sample of shape `sample_shape` (e.g. {1, 28, 28}).
inline std::int64_t flops_per_sample(const Module& model, const Shape& sample_shape) {
  return model.flops(sample_shape);
}

}  // namespace shrink::nn
