// The transformer model families (registered in nn/models.cpp), built on nn/transformer.h:
//   vit-tiny   a ViT (Dosovitskiy et al. 2021) for small images: the image cut into
//              patch x patch patches by a strided conv ("patch_embed"), a learned class token
//              ("cls_token", (1, 1, d)) and positional embeddings ("pos_embed", (1, 1 + N, d)),
//              a pre-LN encoder ("encoder") with its final LayerNorm, a Linear "head" on the
//              class token. Defaults: patch 7, d 128, 4 layers of 4 heads, FFN 512, GELU,
//              dropout 0.1. Arguments: "patch", "dim", "depth", "heads", "mlp", "dropout",
//              "activation", "norm_first", and the image keys "in_channels", "input_size", "classes".
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

}  // namespace shrink::nn
