// The transformer model families (registered in nn/models.cpp), built on nn/transformer.h:
//   vit-tiny   a ViT (Dosovitskiy et al. 2021) for small images: the image cut into
//              patch x patch patches by a strided conv ("patch_embed"), a learned class token
//              ("cls_token", (1, 1, d)) and positional embeddings ("pos_embed", (1, 1 + N, d)),
//              a pre-LN encoder ("encoder") with its final LayerNorm, a Linear "head" on the
//              class token. Defaults: patch 7, d 128, 4 layers of 4 heads, FFN 512, GELU,
//              dropout 0.1. Arguments: "patch", "dim", "depth", "heads", "mlp", "dropout",
//              "activation", "norm_first", and the image keys "in_channels", "input_size", "classes".
//   bert-tiny  a BERT-style classifier of token ids (Devlin et al. 2019; the sizes of Turc et
//              al. 2019's BERT-Tiny): "embeddings" (word_embeddings, position_embeddings, norm,
//              dropout), a post-LN encoder without a final norm ("encoder"), a "pooler" Linear
//              + tanh on the first ([CLS]) token and a "classifier" Linear. Defaults: d 128, 2
//              layers of 2 heads, FFN 512, GELU, dropout 0.1; every weight N(0, 0.02^2), biases
//              0. Token id 0 is padding: the model masks it out of attention by itself (or
//              takes an explicit attention mask (B, T) of 1/0 as its extra input). Arguments:
//              "vocab", "tokens" (the longest sequence), "classes" (set from --data), and the
//              encoder keys above.
#pragma once
#include <memory>
#include <vector>

#include "nn/models.h"
#include "nn/transformer.h"

namespace shrink::nn {

std::vector<ModelBuilder> transformer_builders();

class VisionTransformer : public Module {
 public:
  VisionTransformer(std::int64_t in_channels, std::int64_t image_size, std::int64_t patch, std::int64_t classes,
                    const EncoderOptions& o, Generator& gen);
  std::string type_name() const override { return "VisionTransformer"; }
  std::int64_t patch() const { return patch_; }

 protected:
  Tensor forward(const Tensor& images) override;  // (B, C, S, S) -> logits (B, classes)

 private:
  std::int64_t patch_;
};

class BertClassifier : public Module {
 public:
  BertClassifier(std::int64_t vocab, std::int64_t max_tokens, std::int64_t classes, const EncoderOptions& o,
                 Generator& gen);
  std::string type_name() const override { return "BertClassifier"; }
  bool takes_token_ids() const override { return true; }
  static constexpr std::int64_t kPadId = 0;

 protected:
  Tensor forward(const Tensor& ids) override;  // (B, T) int64 -> logits (B, classes)
  Tensor forward_with(const Tensor& ids, const std::vector<Tensor>& extra) override;

 private:
  Tensor run(const Tensor& ids, const Tensor& attention_mask);
};

}  // namespace shrink::nn
