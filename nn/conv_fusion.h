// A convolution and the layers after it in one kernel pass (core/ops.h conv2d_then): the
// conv, a folded BatchNorm (an Identity, nn/fold_batch_norm.h), a residual add and a ReLU or
// ReLU6, where running them as one is invisible: the same values as calling each module in
// turn, and nothing hooks any of them (hooks, overrides and captures must see every call).
// Containers (Sequential, the residual blocks) ask here first and call their children when
// the answer is no. An inference copy of a ResNet block then writes its output once instead
// of three times (conv, add, ReLU).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/ops.h"
#include "nn/module.h"

namespace shrink::nn {

// act(norm(conv(x)) + residual) in the conv's own pass, or nullopt when that would not be the
// modules' own result or would skip a hook: `conv` must be a plain Conv2d, `norm` (may be
// null) an Identity, `activation` (may be null) a ReLU or ReLU6, none of them hooked.
// `residual` may be undefined (no add).
std::optional<Tensor> fused_conv(Module& conv, Module* norm, Module* activation, const Tensor& x,
                                 const Tensor& residual = {});

// The weights of a residual block relu(norm2(conv2(relu(norm1(conv1(x))))) + x) for
// core/ops.h conv2d_residual_chain, or nullopt unless fused_conv would fuse each convolution with
// its norm and `relu`, and `relu` is a ReLU.
std::optional<ResidualBlockWeights> residual_block_weights(const Module& conv1, const Module* norm1,
                                                           const Module& conv2, const Module* norm2,
                                                           const Module* relu);

// The weights of a MobileNetV2 block for core/ops.h inverted_residual_chain, from its body (a
// Sequential of [expand conv, Identity, ReLU6], [depthwise conv, Identity, ReLU6], project conv,
// Identity: nn/residual.h InvertedResidual with its norms folded), or nullopt unless running them
// there computes what calling the body would: exactly those types, nothing hooked.
std::optional<InvertedResidualWeights> inverted_residual_weights(const Module& body, bool residual);

// True when fused_conv would fuse conv, norm and activation: lets a container decide before it
// computes a residual (whose module calls would otherwise change order).
bool conv_fuses(const Module& conv, const Module* norm, const Module* activation);

// The run of layers[first...] that fused_conv computes in one pass: a conv, then an Identity
// and a ReLU/ReLU6 where they follow it. nullopt when layers[first] does not start one.
struct ConvRun {
  Module* conv = nullptr;
  Module* norm = nullptr;
  Module* activation = nullptr;
  std::size_t length = 1;  // layers it covers
};
std::optional<ConvRun> conv_run(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& layers,
                                std::size_t first);

}  // namespace shrink::nn
