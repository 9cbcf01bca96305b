#include "nn/embedding.h"

#include "core/ops.h"
#include "core/random.h"

namespace shrink::nn {

Embedding::Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim, Generator& gen) {
  SHRINK_CHECK(num_embeddings > 0 && embedding_dim > 0, "Embedding: num_embeddings (", num_embeddings,
               ") and embedding_dim (", embedding_dim, ") must be > 0");
  register_parameter("weight", Tensor::randn({num_embeddings, embedding_dim}, gen));
}

std::string Embedding::extra_repr() const {
  return std::to_string(num_embeddings()) + ", " + std::to_string(embedding_dim());
}

Tensor Embedding::forward(const Tensor& ids) { return embedding(ids, parameter("weight")); }

}  // namespace shrink::nn
