#include "nn/conv_fusion.h"

#include <typeinfo>

#include "core/ops.h"
#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/identity.h"
#include "nn/sequential.h"

namespace shrink::nn {

namespace {

// The epilogue `activation` stands for, or nullopt when it is none of conv2d_then's.
std::optional<ConvActivation> epilogue_of(const Module* activation) {
  if (!activation) return ConvActivation::None;
  if (activation->has_hooks() || typeid(*activation) != typeid(Activation)) return std::nullopt;
  const std::string name = activation_name(*activation);
  if (name == "relu") return ConvActivation::Relu;
  if (name == "relu6") return ConvActivation::Relu6;
  return std::nullopt;
}

// Exact types: a subclass may compute something else.
bool plain(const Module& m, const std::type_info& type) { return typeid(m) == type && !m.has_hooks(); }

}  // namespace

bool conv_fuses(const Module& conv, const Module* norm, const Module* activation) {
  return plain(conv, typeid(Conv2d)) && (!norm || plain(*norm, typeid(Identity))) && epilogue_of(activation);
}

std::optional<Tensor> fused_conv(Module& conv, Module* norm, Module* activation, const Tensor& x,
                                 const Tensor& residual) {
  if (!conv_fuses(conv, norm, activation)) return std::nullopt;
  const auto& c = static_cast<const Conv2d&>(conv);
  return conv2d_then(x, c.weight(), c.bias(), c.options(), residual, *epilogue_of(activation));
}

std::optional<ResidualBlockWeights> residual_block_weights(const Module& conv1, const Module* norm1,
                                                           const Module& conv2, const Module* norm2,
                                                           const Module* relu) {
  if (!conv_fuses(conv1, norm1, relu) || !conv_fuses(conv2, norm2, relu) || epilogue_of(relu) != ConvActivation::Relu)
    return std::nullopt;
  const auto& c1 = static_cast<const Conv2d&>(conv1);
  const auto& c2 = static_cast<const Conv2d&>(conv2);
  return ResidualBlockWeights{c1.weight(), c1.bias(), c1.options(), c2.weight(), c2.bias(), c2.options()};
}

namespace {

// The convolution of `m` when it is a plain Sequential of exactly a conv, a folded norm and the
// activation `want` (torchvision's Conv2dNormActivation, folded), else null.
const Conv2d* conv_norm_activation(const Module& m, ConvActivation want) {
  if (!plain(m, typeid(Sequential))) return nullptr;
  const auto& layers = m.named_children();
  const std::optional<ConvRun> run = conv_run(layers, 0);
  if (!run || run->length != 3 || run->length != layers.size() || !run->norm || epilogue_of(run->activation) != want)
    return nullptr;
  return static_cast<const Conv2d*>(run->conv);
}

}  // namespace

std::optional<InvertedResidualWeights> inverted_residual_weights(const Module& body, bool residual) {
  if (!plain(body, typeid(Sequential))) return std::nullopt;
  const auto& layers = body.named_children();
  if (layers.size() != 3 && layers.size() != 4) return std::nullopt;
  const bool has_expand = layers.size() == 4;
  const Conv2d* expand = has_expand ? conv_norm_activation(*layers[0].second, ConvActivation::Relu6) : nullptr;
  const Conv2d* depthwise = conv_norm_activation(*layers[has_expand ? 1 : 0].second, ConvActivation::Relu6);
  const std::optional<ConvRun> project = conv_run(layers, has_expand ? 2 : 1);
  if ((has_expand && !expand) || !depthwise || !project || project->length != 2 || !project->norm) return std::nullopt;
  InvertedResidualWeights w;
  if (expand) {
    w.expand_weight = expand->weight();
    w.expand_bias = expand->bias();
    w.expand_options = expand->options();
  }
  w.depthwise_weight = depthwise->weight();
  w.depthwise_bias = depthwise->bias();
  w.depthwise_options = depthwise->options();
  const auto* p = static_cast<const Conv2d*>(project->conv);
  w.project_weight = p->weight();
  w.project_bias = p->bias();
  w.project_options = p->options();
  w.residual = residual;
  return w;
}

std::optional<ConvRun> conv_run(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& layers,
                                std::size_t first) {
  if (first >= layers.size() || !conv_fuses(*layers[first].second, nullptr, nullptr)) return std::nullopt;
  ConvRun run;
  run.conv = layers[first].second.get();
  std::size_t next = first + 1;
  if (next < layers.size() && plain(*layers[next].second, typeid(Identity))) run.norm = layers[next++].second.get();
  if (next < layers.size() && epilogue_of(layers[next].second.get()).value_or(ConvActivation::None) != ConvActivation::None)
    run.activation = layers[next++].second.get();
  run.length = next - first;
  return run;
}

}  // namespace shrink::nn
