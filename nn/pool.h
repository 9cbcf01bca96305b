// Pooling layers over NCHW activations, as torch.nn.MaxPool2d / AvgPool2d /
// AdaptiveAvgPool2d: no parameters; each channel is pooled on its own, so for pruning they
// pass channels through unchanged.
#pragma once
#include <cstdint>

#include "core/ops.h"
#include "nn/module.h"

namespace shrink::nn {

class Pool2d : public Module {
 public:
  enum class Kind { Max, Average };
  // Square window `kernel`, `stride` (0: = kernel, PyTorch's default) and `padding`.
  Pool2d(Kind kind, std::int64_t kernel, std::int64_t stride = 0, std::int64_t padding = 0);
  std::string type_name() const override { return kind_ == Kind::Max ? "MaxPool2d" : "AvgPool2d"; }
  std::string extra_repr() const override;
  ChannelSpec channels() const override { return {ChannelSpec::Kind::Elementwise, {}, {}}; }
  const Pool2dOptions& options() const { return options_; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  Kind kind_;
  Pool2dOptions options_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d(std::int64_t out_h, std::int64_t out_w);
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  ChannelSpec channels() const override { return {ChannelSpec::Kind::Elementwise, {}, {}}; }

 protected:
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, out_h_, out_w_); }

 private:
  std::int64_t out_h_, out_w_;
};

}  // namespace shrink::nn
