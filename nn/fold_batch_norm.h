// Inference rewrites: a BatchNorm2d in eval mode is an affine map per channel,
//   y = gamma (x - mean) / sqrt(var + eps) + beta,
// so when its input is one Conv2d's output that nothing else reads, it can be absorbed
// into that conv (scale_c = gamma_c / sqrt(var_c + eps)):
//   W'[c] = scale_c W[c],   b'[c] = scale_c (b[c] - mean_c) + beta_c   (b = 0 without a bias)
// and the BatchNorm replaced by an Identity: one pass over the activation fewer per layer,
// as deployment runtimes do. Pairs come from the containers (Module::sole_reader_pairs), so
// a conv whose output also feeds something else is never touched.
#pragma once
#include <cstdint>
#include <memory>

#include "nn/module.h"

namespace shrink::nn {

// Folds every foldable (Conv2d, BatchNorm2d) pair of `model` in place and returns how many
// were folded. The model must be in eval mode (the fold uses the running statistics);
// training mode is an error. The result computes the same function in eval mode, up to
// float rounding, but is no longer trainable as before: meant for an inference copy.
std::int64_t fold_batch_norms(Module& model);

// An eval-mode copy of `model` (rebuilt from its builder spec, tensors copied, on the
// model's device) with its BatchNorms folded, or null when the model has no builder spec
// (a hand-assembled module) or nothing to fold. The model itself is left as it was.
std::shared_ptr<Module> folded_inference_copy(const Module& model);
// The deployed form of `model` as a copy: folded as above where there is something to fold,
// else a plain eval-mode copy; null only without a builder spec. A copy taken before pruning
// still computes the dense model afterwards (tools/common/summary.h times the two in turns).
std::shared_ptr<Module> inference_copy(const Module& model);

}  // namespace shrink::nn
