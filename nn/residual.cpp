#include "nn/residual.h"

#include <functional>
#include <typeinfo>

#include "core/ops.h"
#include "nn/activation.h"
#include "nn/batch_norm.h"
#include "nn/conv.h"
#include "nn/conv_fusion.h"

namespace shrink::nn {

namespace {

std::shared_ptr<Conv2d> conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
                             std::int64_t groups, Generator& gen) {
  return std::make_shared<Conv2d>(in, out, Conv2dGeometry{kernel, kernel, stride, kernel / 2, 1, groups},
                                  /*bias=*/false, gen);
}

// The projection shortcut when the block changes stride or width, else nothing.
void add_shortcut(Module& block, const std::string& name, std::int64_t in, std::int64_t out, std::int64_t stride,
                  Generator& gen) {
  if (stride == 1 && in == out) return;
  SHRINK_CHECK(!name.empty(), "residual block: a shortcut from ", in, " to ", out, " channels with stride ", stride,
               " needs a projection name");
  auto projection = std::make_shared<Sequential>();
  projection->push_back(conv(in, out, 1, stride, 1, gen));
  projection->push_back(std::make_shared<BatchNorm2d>(out));
  block.register_module(name, projection);
}

}  // namespace

std::shared_ptr<Sequential> conv_bn(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel,
                                    std::int64_t stride, std::int64_t groups, const std::string& activation,
                                    Generator& gen) {
  auto s = std::make_shared<Sequential>();
  s->push_back(conv(in_channels, out_channels, kernel, stride, groups, gen));
  s->push_back(std::make_shared<BatchNorm2d>(out_channels));
  if (!activation.empty()) s->push_back(make_activation(activation));
  return s;
}

BasicBlock::BasicBlock(std::int64_t in_channels, std::int64_t channels, std::int64_t stride,
                       const std::string& shortcut_name, Generator& gen) {
  register_module("conv1", conv(in_channels, channels, 3, stride, 1, gen));
  register_module("bn1", std::make_shared<BatchNorm2d>(channels));
  register_module("relu", make_activation("relu"));
  register_module("conv2", conv(channels, channels, 3, 1, 1, gen));
  register_module("bn2", std::make_shared<BatchNorm2d>(channels));
  add_shortcut(*this, shortcut_name, in_channels, channels, stride, gen);
  shortcut_name_ = stride == 1 && in_channels == channels ? "" : shortcut_name;
}

namespace {

// relu(y + shortcut): one pass over the residual stream (add_relu) where the block's
// activation is a ReLU nothing hooks (channel tracing and activation captures do: they see
// the two ops), else the add and the activation module's call.
Tensor add_then_activate(Module& activation, const Tensor& y, const Tensor& shortcut) {
  if (!activation.has_hooks() && activation_name(activation) == "relu") return add_relu(y, shortcut);
  return activation(y + shortcut);
}

// relu(bn(conv(x))), in the conv's pass where nn/conv_fusion.h allows.
Tensor conv_bn_relu(Module& conv, Module& bn, Module& relu, const Tensor& x) {
  if (std::optional<Tensor> y = fused_conv(conv, &bn, &relu, x)) return *y;
  return relu(bn(conv(x)));
}

// relu(bn(conv(x)) + shortcut(x)), the shortcut computed first and the add and ReLU done in the
// conv's pass where nn/conv_fusion.h allows; else in the modules' order, conv first.
Tensor conv_bn_add_relu(Module& conv, Module& bn, Module& relu, const Tensor& x,
                        const std::function<Tensor()>& shortcut) {
  if (conv_fuses(conv, &bn, &relu)) return *fused_conv(conv, &bn, &relu, x, shortcut());
  Tensor y = bn(conv(x));
  return add_then_activate(relu, y, shortcut());
}

}  // namespace

// convK's output is read by bnK alone (forward below).
std::vector<std::pair<std::string, std::string>> BasicBlock::sole_reader_pairs() const {
  return {{"conv1", "bn1"}, {"conv2", "bn2"}};
}

std::optional<ResidualBlockWeights> BasicBlock::chain_weights() const {
  if (!shortcut_name_.empty() || has_hooks() || typeid(*this) != typeid(BasicBlock)) return std::nullopt;
  return residual_block_weights(*child("conv1"), child("bn1").get(), *child("conv2"), child("bn2").get(),
                                child("relu").get());
}

Tensor BasicBlock::forward(const Tensor& x) {
  Module& relu = *child("relu");
  if (std::optional<ResidualBlockWeights> w = chain_weights()) return conv2d_residual_chain(x, {*w});
  Tensor y = conv_bn_relu(*child("conv1"), *child("bn1"), relu, x);
  return conv_bn_add_relu(*child("conv2"), *child("bn2"), relu, y,
                          [&] { return shortcut_name_.empty() ? x : (*child(shortcut_name_))(x); });
}

Bottleneck::Bottleneck(std::int64_t in_channels, std::int64_t channels, std::int64_t stride,
                       const std::string& shortcut_name, Generator& gen) {
  const std::int64_t out = channels * kExpansion;
  register_module("conv1", conv(in_channels, channels, 1, 1, 1, gen));
  register_module("bn1", std::make_shared<BatchNorm2d>(channels));
  register_module("conv2", conv(channels, channels, 3, stride, 1, gen));
  register_module("bn2", std::make_shared<BatchNorm2d>(channels));
  register_module("conv3", conv(channels, out, 1, 1, 1, gen));
  register_module("bn3", std::make_shared<BatchNorm2d>(out));
  register_module("relu", make_activation("relu"));
  add_shortcut(*this, shortcut_name, in_channels, out, stride, gen);
  shortcut_name_ = stride == 1 && in_channels == out ? "" : shortcut_name;
}

std::vector<std::pair<std::string, std::string>> Bottleneck::sole_reader_pairs() const {
  return {{"conv1", "bn1"}, {"conv2", "bn2"}, {"conv3", "bn3"}};
}

Tensor Bottleneck::forward(const Tensor& x) {
  Module& relu = *child("relu");
  Tensor y = conv_bn_relu(*child("conv1"), *child("bn1"), relu, x);
  y = conv_bn_relu(*child("conv2"), *child("bn2"), relu, y);
  return conv_bn_add_relu(*child("conv3"), *child("bn3"), relu, y,
                          [&] { return shortcut_name_.empty() ? x : (*child(shortcut_name_))(x); });
}

InvertedResidual::InvertedResidual(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride,
                                   std::int64_t expand_ratio, Generator& gen)
    : use_residual_(stride == 1 && in_channels == out_channels) {
  SHRINK_CHECK(stride == 1 || stride == 2, "InvertedResidual: stride must be 1 or 2, got ", stride);
  SHRINK_CHECK(expand_ratio >= 1, "InvertedResidual: expand ratio must be >= 1, got ", expand_ratio);
  const std::int64_t hidden = in_channels * expand_ratio;
  auto body = std::make_shared<Sequential>();
  if (expand_ratio != 1) body->push_back(conv_bn(in_channels, hidden, 1, 1, 1, "relu6", gen));
  body->push_back(conv_bn(hidden, hidden, 3, stride, hidden, "relu6", gen));  // depthwise
  body->push_back(conv(hidden, out_channels, 1, 1, 1, gen));
  body->push_back(std::make_shared<BatchNorm2d>(out_channels));
  register_module("conv", body);
}

std::optional<InvertedResidualWeights> InvertedResidual::chain_weights() const {
  if (has_hooks() || typeid(*this) != typeid(InvertedResidual)) return std::nullopt;
  return inverted_residual_weights(*child("conv"), use_residual_);
}

Tensor InvertedResidual::forward(const Tensor& x) {
  if (std::optional<InvertedResidualWeights> w = chain_weights()) return inverted_residual_chain(x, {*w});
  Module& body = *child("conv");
  // x + body(x): the add in the last 1x1 conv's pass where nothing hooks the body (Sequential).
  if (use_residual_ && typeid(body) == typeid(Sequential)) return static_cast<Sequential&>(body).call_then_add(x, x);
  Tensor y = body(x);
  return use_residual_ ? x + y : y;
}

}  // namespace shrink::nn
