// Embedding: a (num_embeddings, embedding_dim) table looked up by int64 ids, as
// torch.nn.Embedding. The sizes are read from the weight's shape.
#pragma once
#include <cstdint>

#include "nn/module.h"

namespace shrink {
class Generator;
}

namespace shrink::nn {

class Embedding : public Module {
 public:
  // weight ~ N(0, 1), PyTorch's default.
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, Generator& gen);
  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override;
  std::int64_t num_embeddings() const { return parameter("weight").size(0); }
  std::int64_t embedding_dim() const { return parameter("weight").size(1); }

 protected:
  Tensor forward(const Tensor& ids) override;  // ids (...) int64 -> (..., embedding_dim)
};

}  // namespace shrink::nn
