// Linear: y = x W^T + b with W (out_features, in_features), as torch.nn.Linear. The sizes
// are read from W's shape, so a pruned (smaller) weight makes a smaller layer.
#pragma once
#include <cstdint>

#include "nn/module.h"

namespace shrink {
class Generator;
}

namespace shrink::nn {

class Linear : public Module {
 public:
  // PyTorch's default init: kaiming_uniform(a = sqrt(5)) gives W ~ U(-1/sqrt(in), 1/sqrt(in)),
  // and b ~ U(-1/sqrt(in), 1/sqrt(in)). W is drawn before b from `gen`.
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias, Generator& gen);
  Linear(std::int64_t in_features, std::int64_t out_features, Generator& gen)
      : Linear(in_features, out_features, true, gen) {}
  // From existing tensors (how pruning rebuilds a layer): weight (out, in), bias (out) or
  // undefined for no bias.
  explicit Linear(Tensor weight, Tensor bias = Tensor());

  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  ChannelSpec channels() const override;

  std::int64_t in_features() const { return weight().size(1); }
  std::int64_t out_features() const { return weight().size(0); }
  bool has_bias() const { return has_parameter("bias"); }
  const Tensor& weight() const { return parameter("weight"); }
  Tensor bias() const { return has_bias() ? parameter("bias") : Tensor(); }

 protected:
  Tensor forward(const Tensor& x) override;  // the linear op counts its FLOPs (nn/flops.h)
};

}  // namespace shrink::nn
