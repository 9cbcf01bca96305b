// Activation taps: run calibration inputs through a model and keep what chosen layers
// saw and produced. Criteria that score from activations (PFP, i-SpaSP, Taylor) read
// them here instead of re-implementing the forward pass.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/module.h"

namespace shrink::prune {

struct Tap {
  Tensor input;   // what the module received
  Tensor output;  // what it produced
};

// Forward pass of a feed-forward chain over `inputs` (eval mode, no gradients), keeping
// the input and output of every module named in `paths` (top-level child names).
std::map<std::string, Tap> capture(nn::Module& model, const Tensor& inputs,
                                   const std::vector<std::string>& paths);

// Runs the chain's children from `first` (inclusive) to `last` (inclusive) on `x`, with
// gradients recorded if x requires them: the "rest of the network" a criterion needs.
Tensor run_range(nn::Module& model, const Tensor& x, const std::string& first, const std::string& last);

}  // namespace shrink::prune
