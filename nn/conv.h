// Conv2d: 2-D convolution over NCHW activations, as torch.nn.Conv2d, with weight
// (out_channels, in_channels / groups, kh, kw) and an optional bias (out_channels). Channel
// counts are read from the weight's shape, so a pruned (smaller) weight makes a smaller
// layer. A depthwise conv (groups == in_channels == out_channels) keeps that property when
// pruned: its groups follow its channels.
#pragma once
#include <cstdint>

#include "core/ops.h"
#include "nn/module.h"

namespace shrink {
class Generator;
}

namespace shrink::nn {

struct Conv2dGeometry {
  std::int64_t kernel_h = 3, kernel_w = 3;
  std::int64_t stride = 1, padding = 0, dilation = 1;  // the same along both axes
  std::int64_t groups = 1;
};

// The op's options of a layer of geometry g (both axes alike).
inline Conv2dOptions conv_options(const Conv2dGeometry& g) {
  return {g.stride, g.stride, g.padding, g.padding, g.dilation, g.dilation, g.groups};
}

class Conv2d : public Module {
 public:
  // PyTorch's default init: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
  // fan_in = in_channels / groups * kh * kw; W is drawn before b from `gen`.
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, const Conv2dGeometry& g, bool bias,
         Generator& gen);
  // From existing tensors (how pruning rebuilds a layer): weight (out, in / groups, kh, kw),
  // bias (out) or undefined.
  Conv2d(Tensor weight, Tensor bias, const Conv2dGeometry& g);

  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  ChannelSpec channels() const override;
  void check_invariants() const override;

  const Tensor& weight() const { return parameter("weight"); }
  Tensor bias() const { return has_parameter("bias") ? parameter("bias") : Tensor(); }
  bool is_depthwise() const { return depthwise_; }
  std::int64_t out_channels() const { return weight().size(0); }
  std::int64_t groups() const { return depthwise_ ? out_channels() : groups_; }
  std::int64_t in_channels() const { return weight().size(1) * groups(); }
  // The layer's geometry now: `groups` follows a pruned depthwise conv's channels.
  Conv2dGeometry geometry() const {
    Conv2dGeometry g = geometry_;
    g.groups = groups();
    return g;
  }
  Conv2dOptions options() const;

 protected:
  Tensor forward(const Tensor& x) override;  // the conv2d op counts its FLOPs

 private:
  Conv2dGeometry geometry_;
  bool depthwise_ = false;
  std::int64_t groups_ = 1;  // as constructed; a depthwise conv derives it from its weight
};

}  // namespace shrink::nn
