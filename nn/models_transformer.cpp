#include "nn/models_transformer.h"

#include "core/ops.h"
#include "core/random.h"
#include "nn/conv.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/model_arguments.h"
#include "nn/sequential.h"
#include "nn/transformer.h"

namespace shrink::nn {

namespace {

// ViT's positional embeddings: N(0, 0.02^2) values clipped at 2 standard deviations (a
// clip, not a resampling truncation as timm's trunc_normal_; the spread is what matters).
Tensor truncated_normal(const Shape& shape, double std, Generator& gen) {
  Tensor t = Tensor::randn(shape, gen, DType::Float64);
  std::vector<double> v = t.to_vector<double>();
  for (double& x : v) x = std * std::max(-2.0, std::min(2.0, x));
  return Tensor::from_vector(v, shape).to(DType::Float32);
}

EncoderOptions encoder_arguments(const nlohmann::json& spec, const EncoderOptions& defaults) {
  EncoderOptions o = defaults;
  o.d_model = int_argument(spec, "dim", o.d_model, 1, 1 << 16);
  o.layers = int_argument(spec, "depth", o.layers, 1, 1024);
  o.heads = int_argument(spec, "heads", o.heads, 1, o.d_model);
  SHRINK_CHECK(o.d_model % o.heads == 0, "model spec: 'dim' (", o.d_model, ") must be divisible by 'heads' (",
               o.heads, ")");
  o.ffn = int_argument(spec, "mlp", o.ffn, 1, 1 << 20);
  o.dropout = number_argument(spec, "dropout", o.dropout, 0.0, 0.99);
  o.activation = choice_argument(spec, "activation", o.activation, {"gelu", "gelu_tanh", "relu"});
  o.norm_first = flag_argument(spec, "norm_first", o.norm_first);
  return o;
}
const std::vector<std::string> kEncoderKeys = {"dim", "depth", "heads", "mlp", "dropout", "activation", "norm_first"};

// Values of an encoder of `o` (nn/transformer.h) without building it: per layer the Q, K, V
// and output projections with biases, the FFN's two Linears, two LayerNorms; the final norm.
// (d <= 2^16, ffn <= 2^20, layers <= 2^10: no term overflows.)
std::int64_t encoder_parameter_count(const EncoderOptions& o) {
  const std::int64_t d = o.d_model, f = o.ffn;
  const std::int64_t layer = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 2 * (2 * d);
  return o.layers * layer + (o.final_norm ? 2 * d : 0);
}

std::vector<std::string> with_keys(std::vector<std::string> keys, const std::vector<std::string>& more) {
  keys.insert(keys.end(), more.begin(), more.end());
  return keys;
}

ModelBuilder vit_builder() {
  const auto image = [](const nlohmann::json& spec) { return image_arguments(spec, 28, 1); };
  // patch_embed (a d x C x p x p conv with bias), cls_token, pos_embed (1 + tokens), the
  // encoder, head.
  const auto count = [image](const nlohmann::json& spec) {
    const ImageArguments a = image(spec);
    const std::int64_t patch = int_argument(spec, "patch", 7, 1, a.size), tokens = (a.size / patch) * (a.size / patch);
    const EncoderOptions o = encoder_arguments(spec, EncoderOptions{});
    const std::int64_t d = o.d_model;
    return d * a.channels * patch * patch + d + d + (1 + tokens) * d + encoder_parameter_count(o) +
           d * a.classes + a.classes;
  };
  return {"vit-tiny",
          "ViT for small images: patches (\"patch\", default 7) as tokens, a class token, a pre-LN encoder "
          "(default d 128, 4 layers, 4 heads, FFN 512)",
          with_image_keys(with_keys({"patch"}, kEncoderKeys)),
          [image, count](const nlohmann::json& spec, Generator& gen) -> std::shared_ptr<Module> {
            check_parameter_total(spec, count(spec));
            const ImageArguments a = image(spec);
            const std::int64_t patch = int_argument(spec, "patch", 7, 1, a.size);
            return std::make_shared<VisionTransformer>(a.channels, a.size, patch, a.classes,
                                                       encoder_arguments(spec, EncoderOptions{}), gen);
          },
          [image](const nlohmann::json& spec) { return image_shape(image(spec)); },
          {},
          count};
}

ModelBuilder bert_builder() {
  EncoderOptions defaults;
  defaults.layers = 2, defaults.heads = 2, defaults.norm_first = false, defaults.final_norm = false;
  defaults.eps = 1e-12;  // BERT's LayerNorm epsilon
  struct Sizes {
    std::int64_t vocab, tokens, classes;
  };
  const auto sizes = [](const nlohmann::json& spec) {
    return Sizes{int_argument(spec, "vocab", 30522, 2, 1 << 24), int_argument(spec, "tokens", 128, 1, 1 << 16),
                 int_argument(spec, "classes", 2, 1, kMaxClasses)};
  };
  // Word and position embeddings, their LayerNorm, the encoder, pooler, classifier.
  const auto count = [defaults, sizes](const nlohmann::json& spec) {
    const Sizes z = sizes(spec);
    const EncoderOptions o = encoder_arguments(spec, defaults);
    const std::int64_t d = o.d_model;
    return (z.vocab + z.tokens) * d + 2 * d + encoder_parameter_count(o) + (d * d + d) + (d * z.classes + z.classes);
  };
  return {"bert-tiny",
          "BERT-style classifier of token ids (id 0 is padding, masked out): embeddings, a post-LN encoder "
          "(default d 128, 2 layers, 2 heads, FFN 512), a pooler and a classifier on the first token",
          with_keys({"vocab", "tokens", "classes"}, kEncoderKeys),
          [defaults, sizes, count](const nlohmann::json& spec, Generator& gen) -> std::shared_ptr<Module> {
            check_parameter_total(spec, count(spec));
            const Sizes z = sizes(spec);
            return std::make_shared<BertClassifier>(z.vocab, z.tokens, z.classes, encoder_arguments(spec, defaults),
                                                    gen);
          },
          [sizes](const nlohmann::json& spec) { return Shape{sizes(spec).tokens}; },
          {},
          count};
}

// Sets every Linear and Embedding weight of `m` to N(0, std^2) and every Linear bias to 0
// (BERT's _init_weights); LayerNorms keep 1 and 0.
void bert_init(Module& m, double std, Generator& gen) {
  for (auto& [name, t] : m.named_parameters()) {
    const bool bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    if (name.find("norm") != std::string::npos) continue;
    m.set_parameter(name, bias ? Tensor::zeros(t.shape()) : mul_scalar(Tensor::randn(t.shape(), gen), std));
  }
}

void check_ids(const Tensor& ids) {
  SHRINK_CHECK(ids.dtype() == DType::Int64 && ids.dim() == 2, "BertClassifier: input must be int64 token ids "
               "(batch, tokens), got ", dtype_name(ids.dtype()), " ", shape_str(ids.shape()));
}

}  // namespace

VisionTransformer::VisionTransformer(std::int64_t in_channels, std::int64_t image_size, std::int64_t patch,
                                     std::int64_t classes, const EncoderOptions& o, Generator& gen)
    : patch_(patch) {
  SHRINK_CHECK(patch > 0 && image_size % patch == 0, "VisionTransformer: the image size ", image_size,
               " must be a multiple of the patch size ", patch);
  const std::int64_t tokens = (image_size / patch) * (image_size / patch);
  register_module("patch_embed",
                  std::make_shared<Conv2d>(in_channels, o.d_model, Conv2dGeometry{patch, patch, patch, 0, 1, 1}, true, gen));
  register_parameter("cls_token", Tensor::zeros({1, 1, o.d_model}));
  register_parameter("pos_embed", truncated_normal({1, 1 + tokens, o.d_model}, 0.02, gen));
  register_module("encoder", std::make_shared<TransformerEncoder>(o, gen));
  register_module("head", std::make_shared<Linear>(o.d_model, classes, gen));
}

Tensor VisionTransformer::forward(const Tensor& images) {
  const Tensor& pos = parameter("pos_embed");
  const Tensor patches = (*child("patch_embed"))(images);  // (B, d, S/p, S/p)
  const std::int64_t b = patches.size(0), d = patches.size(1);
  const Tensor tokens = transpose(reshape(patches, {b, d, -1}), 1, 2);  // (B, N, d)
  SHRINK_CHECK(tokens.size(1) + 1 == pos.size(1), "VisionTransformer: images ", shape_str(images.shape()), " give ",
               tokens.size(1), " patches of ", patch_, "x", patch_, " but pos_embed ", shape_str(pos.shape()),
               " holds ", pos.size(1) - 1);
  const Tensor cls = expand(parameter("cls_token"), {b, 1, d});
  const Tensor h = (*child("encoder"))(concat({cls, tokens}, 1) + pos);
  return (*child("head"))(reshape(slice(h, 1, 0, 1), {b, d}));
}

BertClassifier::BertClassifier(std::int64_t vocab, std::int64_t max_tokens, std::int64_t classes,
                               const EncoderOptions& o, Generator& gen) {
  auto embeddings = std::make_shared<Sequential>();  // a holder: run() calls its children by name
  embeddings->push_back("word_embeddings", std::make_shared<Embedding>(vocab, o.d_model, gen));
  embeddings->push_back("position_embeddings", std::make_shared<Embedding>(max_tokens, o.d_model, gen));
  embeddings->push_back("norm", std::make_shared<LayerNorm>(o.d_model, o.eps));
  embeddings->push_back("dropout", std::make_shared<Dropout>(o.dropout, gen));
  register_module("embeddings", embeddings);
  register_module("encoder", std::make_shared<TransformerEncoder>(o, gen));
  register_module("pooler", std::make_shared<Linear>(o.d_model, o.d_model, gen));
  register_module("classifier", std::make_shared<Linear>(o.d_model, classes, gen));
  bert_init(*this, 0.02, gen);
}

Tensor BertClassifier::forward(const Tensor& ids) {
  check_ids(ids);
  // The padding mask of the ids themselves: 1 for a token, 0 for the padding id.
  std::vector<std::int64_t> mask = ids.detach().to_vector<std::int64_t>();
  for (std::int64_t& m : mask) m = m == kPadId ? 0 : 1;
  return run(ids, Tensor::from_vector(mask, ids.shape()));
}

Tensor BertClassifier::forward_with(const Tensor& ids, const std::vector<Tensor>& extra) {
  SHRINK_CHECK(extra.size() <= 1, "BertClassifier: takes ids and an optional attention mask, got ", extra.size(),
               " extra inputs");
  if (extra.empty()) return forward(ids);
  SHRINK_CHECK(extra[0].shape() == ids.shape(), "BertClassifier: attention mask ", shape_str(extra[0].shape()),
               " must have the ids' shape ", shape_str(ids.shape()));
  return run(ids, extra[0]);
}

Tensor BertClassifier::run(const Tensor& ids, const Tensor& attention_mask) {
  check_ids(ids);
  Module& emb = *child("embeddings");
  const auto& positions = std::dynamic_pointer_cast<Embedding>(emb.child("position_embeddings"));
  const std::int64_t b = ids.size(0), t = ids.size(1);
  SHRINK_CHECK(t <= positions->num_embeddings(), "BertClassifier: ", t, " tokens but position_embeddings ",
               shape_str(positions->parameter("weight").shape()), " holds ", positions->num_embeddings());
  const Tensor pos = (*positions)(Tensor::arange(t, DType::Int64, ids.device()));  // (T, d)
  Tensor h = (*emb.child("word_embeddings"))(ids) + pos;
  h = (*emb.child("dropout"))((*emb.child("norm"))(h));
  const Tensor bias = attention_mask_bias(attention_mask, h.dtype());
  h = (*child("encoder"))(h, {bias});
  const Tensor cls = reshape(slice(h, 1, 0, 1), {b, h.size(2)});
  return (*child("classifier"))(tanh((*child("pooler"))(cls)));
}

std::vector<ModelBuilder> transformer_builders() { return {vit_builder(), bert_builder()}; }

}  // namespace shrink::nn
