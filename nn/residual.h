// The residual blocks of the CNN families, with the children and names of the reference
// PyTorch code so that state dicts map by name:
//   BasicBlock       ResNet-18/34 (torchvision) and CIFAR ResNet-20/32/44/56/110:
//                    conv1 3x3 (stride) -> bn1 -> relu -> conv2 3x3 -> bn2, + shortcut, relu
//   Bottleneck       ResNet-50 (torchvision, stride on the 3x3 as v1.5):
//                    conv1 1x1 -> bn1 -> relu -> conv2 3x3 (stride) -> bn2 -> relu
//                    -> conv3 1x1 (4x) -> bn3, + shortcut, relu
//   InvertedResidual MobileNetV2 (torchvision): conv = [expand 1x1 + BN + ReLU6 (t > 1)],
//                    depthwise 3x3 (stride) + BN + ReLU6, project 1x1, BN; + input when the
//                    stride is 1 and the widths match.
// A shortcut that changes stride or width is a 1x1 conv + BN projection ("option B"), a
// Sequential named `shortcut_name` ("downsample" in torchvision, "shortcut" in the usual
// CIFAR code) with children "0" (conv) and "1" (bn).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/ops.h"
#include "nn/module.h"
#include "nn/sequential.h"

namespace shrink {
class Generator;
}

namespace shrink::nn {

class BasicBlock : public Module {
 public:
  static constexpr std::int64_t kExpansion = 1;
  BasicBlock(std::int64_t in_channels, std::int64_t channels, std::int64_t stride,
             const std::string& shortcut_name, Generator& gen);
  std::string type_name() const override { return "BasicBlock"; }
  std::vector<std::pair<std::string, std::string>> sole_reader_pairs() const override;
  // Its weights for core/ops.h conv2d_residual_chain, or nullopt unless running them there
  // computes what calling this block would (an identity shortcut, nothing hooked, its norms
  // folded away: nn/conv_fusion.h). Sequential runs consecutive such blocks in one chain.
  std::optional<ResidualBlockWeights> chain_weights() const;

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::string shortcut_name_;  // empty: identity shortcut
};

class Bottleneck : public Module {
 public:
  static constexpr std::int64_t kExpansion = 4;
  Bottleneck(std::int64_t in_channels, std::int64_t channels, std::int64_t stride,
             const std::string& shortcut_name, Generator& gen);
  std::string type_name() const override { return "Bottleneck"; }
  std::vector<std::pair<std::string, std::string>> sole_reader_pairs() const override;

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::string shortcut_name_;
};

class InvertedResidual : public Module {
 public:
  InvertedResidual(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride,
                   std::int64_t expand_ratio, Generator& gen);
  std::string type_name() const override { return "InvertedResidual"; }
  bool uses_residual() const { return use_residual_; }
  // Its weights for core/ops.h inverted_residual_chain, or nullopt unless running them there
  // computes what calling this block would (nothing hooked, its norms folded away:
  // nn/conv_fusion.h). Sequential runs consecutive such blocks in one chain.
  std::optional<InvertedResidualWeights> chain_weights() const;

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  bool use_residual_;
};

// conv (no bias) -> BatchNorm2d [-> activation "relu" / "relu6"; "" for none], as a
// Sequential "0", "1", "2" (torchvision's Conv2dNormActivation).
std::shared_ptr<Sequential> conv_bn(std::int64_t in_channels, std::int64_t out_channels,
                                    std::int64_t kernel, std::int64_t stride, std::int64_t groups,
                                    const std::string& activation, Generator& gen);

}  // namespace shrink::nn
