// Re-estimating BatchNorm running statistics after a structural change (a pruning cut).
//
// A cut leaves every BatchNorm after it normalising with the mean and variance its input had
// in the dense network. Those are stale: removing channels shifts what each later layer
// sees (docs/results/recalibrate_bn_*.md measures what re-estimating them recovers on a
// trained MobileNetV2, beside the plain cuts and --refit). Running the
// calibration samples through the cut model in BatchNorm training mode and keeping their
// average batch statistics is the "adaptive BatchNorm" of EagleEye (Li et al., ECCV 2020),
// and what torch.optim.swa_utils.update_bn does after weight averaging: no weight changes.
#pragma once
#include <cstdint>

#include "core/tensor.h"
#include "nn/module.h"

namespace shrink::nn {

// Replaces the running mean and variance of every BatchNorm2d in `model` by the average,
// over floor(N / batch_size) passes (at least one; equal to within one sample) through
// `inputs` (N, ...), of each pass's batch mean and unbiased batch variance (PyTorch's cumulative average,
// momentum None). Each BatchNorm normalises with the pass's batch statistics while the
// passes run, as in training; every other module stays in evaluation mode (no dropout).
// Parameters are not touched; the model's training mode and the momenta are restored.
// Returns how many BatchNorms were recalibrated (0: none, and nothing ran). Needs N >= 2 and
// batch_size >= 2 (one sample has no variance).
std::int64_t recalibrate_batch_norm(Module& model, const Tensor& inputs, std::int64_t batch_size = 128);

}  // namespace shrink::nn
