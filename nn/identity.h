// Identity: returns its input (the same tensor, no copy), as torch.nn.Identity. Inference
// rewrites put it where a layer was merged into its neighbour (nn/fold_batch_norm.h), so the
// parent's forward, which calls its children by name, runs unchanged.
#pragma once
#include "nn/module.h"

namespace shrink::nn {

class Identity : public Module {
 public:
  std::string type_name() const override { return "Identity"; }
  ChannelSpec channels() const override { return {ChannelSpec::Kind::Elementwise, {}, {}}; }

 protected:
  Tensor forward(const Tensor& x) override { return x; }
};

}  // namespace shrink::nn
