#include "nn/models_transformer.h"

#include "core/ops.h"
#include "core/random.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/model_arguments.h"
#include "nn/transformer.h"

namespace shrink::nn {

namespace {

// Tensors a layer stores beyond Linear/Conv sizes: the token embeddings of ViT are drawn from
// N(0, 0.02^2), clipped at 2 standard deviations (timm's trunc_normal_(std=.02)).
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

std::vector<std::string> with_keys(std::vector<std::string> keys, const std::vector<std::string>& more) {
  keys.insert(keys.end(), more.begin(), more.end());
  return keys;
}

ModelBuilder vit_builder() {
  const auto image = [](const nlohmann::json& spec) { return image_arguments(spec, 28, 1); };
  return {"vit-tiny",
          "ViT for small images: patches (\"patch\", default 7) as tokens, a class token, a pre-LN encoder "
          "(default d 128, 4 layers, 4 heads, FFN 512)",
          with_image_keys(with_keys({"patch"}, kEncoderKeys)),
          [image](const nlohmann::json& spec, Generator& gen) -> std::shared_ptr<Module> {
            const ImageArguments a = image(spec);
            const std::int64_t patch = int_argument(spec, "patch", 7, 1, a.size);
            return std::make_shared<VisionTransformer>(a.channels, a.size, patch, a.classes,
                                                       encoder_arguments(spec, EncoderOptions{}), gen);
          },
          [image](const nlohmann::json& spec) { return image_shape(image(spec)); },
          {},
          {}};
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

std::vector<ModelBuilder> transformer_builders() { return {vit_builder()}; }

}  // namespace shrink::nn
