#include "nn/transformer.h"

#include "core/ops.h"
#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/dropout.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/sequential.h"

namespace shrink::nn {

namespace {

void check_mask_count(const char* who, const std::vector<Tensor>& extra) {
  SHRINK_CHECK(extra.size() <= 1, who, ": takes x and an optional attention mask, got ", extra.size(),
               " extra inputs");
}

}  // namespace

TransformerEncoderLayer::TransformerEncoderLayer(const EncoderOptions& o, Generator& gen) : norm_first_(o.norm_first) {
  SHRINK_CHECK(o.ffn > 0, "TransformerEncoderLayer: ffn must be > 0, got ", o.ffn);
  SHRINK_CHECK(o.dropout >= 0 && o.dropout < 1, "TransformerEncoderLayer: dropout must be in [0, 1), got ",
               o.dropout);
  // PyTorch's registration order, so state dicts list alike.
  register_module("self_attn", std::make_shared<MultiheadAttention>(o.d_model, o.heads, true, gen));
  register_module("linear1", std::make_shared<Linear>(o.d_model, o.ffn, gen));
  register_module("dropout", std::make_shared<Dropout>(o.dropout, gen));
  register_module("linear2", std::make_shared<Linear>(o.ffn, o.d_model, gen));
  register_module("norm1", std::make_shared<LayerNorm>(o.d_model, o.eps));
  register_module("norm2", std::make_shared<LayerNorm>(o.d_model, o.eps));
  register_module("dropout1", std::make_shared<Dropout>(o.dropout, gen));
  register_module("dropout2", std::make_shared<Dropout>(o.dropout, gen));
  register_module("activation", make_activation(o.activation));
}

std::string TransformerEncoderLayer::extra_repr() const {
  return std::string("norm_first=") + (norm_first_ ? "true" : "false");
}

std::vector<Module::DeclaredGroup> TransformerEncoderLayer::declared_groups() const {
  const auto* attn = dynamic_cast<const MultiheadAttention*>(child("self_attn").get());
  SHRINK_CHECK(attn != nullptr, "TransformerEncoderLayer: self_attn must be a MultiheadAttention");
  const std::int64_t hd = attn->head_dim();
  DeclaredGroup heads{"self_attn", "head", {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"},
                      {}, "self_attn.out_proj", "", {}, hd};
  for (const char* proj : {"q_proj", "k_proj", "v_proj"})
    for (const char* tensor : {"weight", "bias"})
      if (has_parameter(std::string("self_attn.") + proj + "." + tensor))
        heads.members.push_back({std::string("self_attn.") + proj + "." + tensor, 0, hd});
  heads.members.push_back({"self_attn.out_proj.weight", 1, hd});
  DeclaredGroup neurons{"linear1", "neuron", {"linear1"}, {{"linear1.weight", 0, 1}}, "linear2",
                        "activation", {"activation", "dropout"}, 1};
  if (has_parameter("linear1.bias")) neurons.members.push_back({"linear1.bias", 0, 1});
  neurons.members.push_back({"linear2.weight", 1, 1});
  return {heads, neurons};
}

Tensor TransformerEncoderLayer::feed_forward(const Tensor& x) {
  Module &l1 = *child("linear1"), &act = *child("activation"), &drop = *child("dropout"), &l2 = *child("linear2");
  return (*child("dropout2"))(l2(drop(act(l1(x)))));
}

Tensor TransformerEncoderLayer::run(const Tensor& x, const std::vector<Tensor>& mask) {
  Module &attn = *child("self_attn"), &n1 = *child("norm1"), &n2 = *child("norm2"), &d1 = *child("dropout1");
  if (norm_first_) {
    const Tensor h = x + d1(attn(n1(x), mask));
    return h + feed_forward(n2(h));
  }
  const Tensor h = n1(x + d1(attn(x, mask)));
  return n2(h + feed_forward(h));
}

Tensor TransformerEncoderLayer::forward(const Tensor& x) { return run(x, {}); }

Tensor TransformerEncoderLayer::forward_with(const Tensor& x, const std::vector<Tensor>& extra) {
  check_mask_count("TransformerEncoderLayer", extra);
  return run(x, extra);
}

TransformerEncoder::TransformerEncoder(const EncoderOptions& o, Generator& gen) {
  SHRINK_CHECK(o.layers > 0, "TransformerEncoder: layers must be > 0, got ", o.layers);
  auto layers = std::make_shared<Sequential>();
  for (std::int64_t i = 0; i < o.layers; ++i) layers->push_back(std::make_shared<TransformerEncoderLayer>(o, gen));
  register_module("layers", layers);
  if (o.final_norm) register_module("norm", std::make_shared<LayerNorm>(o.d_model, o.eps));
}

std::int64_t TransformerEncoder::num_layers() const {
  return static_cast<std::int64_t>(child("layers")->named_children().size());
}

Tensor TransformerEncoder::forward(const Tensor& x) { return forward_with(x, {}); }

Tensor TransformerEncoder::forward_with(const Tensor& x, const std::vector<Tensor>& extra) {
  check_mask_count("TransformerEncoder", extra);
  Tensor h = x;
  for (const auto& [name, layer] : child("layers")->named_children()) h = (*layer)(h, extra);
  for (const auto& [name, c] : named_children())
    if (name == "norm") return (*c)(h);
  return h;
}

}  // namespace shrink::nn
