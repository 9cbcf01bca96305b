// Activation taps: run calibration inputs through a model and keep what chosen modules saw
// and produced, by forward hooks on their module paths — on any graph, not only chains.
// Criteria that score from activations (PFP, i-SpaSP, Taylor, the refit) read them here
// instead of re-implementing the forward pass.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/module.h"

namespace shrink::prune {

struct Tap {
  Tensor input;   // what the module received (its first call in the pass)
  Tensor output;  // what it produced
};

// Forward pass over `inputs` (eval mode, no gradients) keeping the input and output of the
// first call of every module named in `paths` (dotted paths). The pass stops as soon as all
// of them have run: what comes after is never computed. Throws naming a path the model
// lacks or that the pass never called.
std::map<std::string, Tap> capture(nn::Module& model, const Tensor& inputs, const std::vector<std::string>& paths);

// Runs `model` on `x` with the output of module `path` (its first call) replaced by
// `replace(input, output)`: the "rest of the network" a criterion needs after it changes
// one layer's output or input. Gradients are recorded as the caller's grad mode says.
Tensor run_with_replaced(nn::Module& model, const Tensor& x, const std::string& path,
                         const std::function<Tensor(const Tensor& input, const Tensor& output)>& replace);

// A feed-forward chain's (Sequential's) children from `first` to `last` (inclusive) on `x`,
// gradients recorded if x requires them. GFS batches many candidate subnetworks through the
// layers after a consumer at once, which only a chain allows (a residual add would meet a
// batch of another size); other criteria use run_with_replaced.
Tensor run_range(nn::Module& model, const Tensor& x, const std::string& first, const std::string& last);

}  // namespace shrink::prune
