// Reuse of module outputs across the passes of one pruning run.
//
// Score criteria that need a gradient (taylor, head-importance) run one forward and backward
// pass of the whole network per group, on the network as pruned so far (prune/pruner.h). A
// module upstream of every cut made since the previous pass reads the same input with the
// same weights, so its output is the tensor that pass computed: the memo returns it instead of
// running the module again (through nn::Module's forward overrides). Upstream modules then cost
// a fingerprint of their weights; on a ResNet-56 scored group by group about half of every
// forward pass is skipped.
//
// When an output is reused: the module is in eval mode, its input is the very tensor (same
// TensorImpl, held alive by the memo, so no other tensor can take its address) it was computed
// from, neither that input nor the output needs a gradient, and its type name, parameter and
// buffer names, shapes and bytes hash to the same fingerprint (an in-place edit, a slice, a
// refit, a replaced child all change it). CPU tensors only: a fingerprint of device weights
// would cost a copy to the host, so modules on other devices always run.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/module.h"

namespace shrink::prune {

class ActivationMemo {
 public:
  // Outputs are kept while their bytes stay within `budget_bytes`; past it, modules run as usual.
  explicit ActivationMemo(std::int64_t budget_bytes = std::int64_t{2} << 30) : budget_(budget_bytes) {}

  // Puts overrides on the largest submodules of `model` that neither are nor contain a module
  // in `live` (dotted paths: the modules whose calls the caller hooks, which must really run),
  // and forgets the outputs of every other module. Keep the handles for the forward pass.
  std::vector<nn::HookHandle> attach(nn::Module& model, const std::vector<std::string>& live);

  std::int64_t hits() const { return hits_; }          // calls answered from the memo
  std::int64_t stored_bytes() const { return bytes_; }  // outputs held now

 private:
  struct Entry {
    Tensor input, output;
    std::uint64_t fingerprint = 0;
    std::int64_t bytes = 0;
  };
  std::optional<Tensor> lookup_or_run(nn::Module& module, const Tensor& input);
  void forget(std::map<const nn::Module*, Entry>::iterator it);

  std::map<const nn::Module*, Entry> entries_;
  const nn::Module* running_ = nullptr;  // the module whose own call is in progress
  std::int64_t budget_, bytes_ = 0, hits_ = 0;
};

}  // namespace shrink::prune
