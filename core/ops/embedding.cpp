// embedding: rows of a (vocabulary, dim) table picked by int64 ids of any shape, as
// torch.nn.functional.embedding. Composed on index_select, so the gradient is the backend's
// index_add (a scatter-add: a repeated id accumulates every one of its rows' gradients).
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

Tensor embedding(const Tensor& ids, const Tensor& weight) {
  check_defined("embedding", ids);
  check_floating("embedding", weight);
  SHRINK_CHECK(ids.dtype() == DType::Int64, "embedding: ids must be int64, got ", dtype_name(ids.dtype()), " ",
               shape_str(ids.shape()));
  SHRINK_CHECK(weight.dim() == 2, "embedding: weight must be (vocabulary, dim), got ", shape_str(weight.shape()));
  SHRINK_CHECK(ids.device() == weight.device(), "embedding: ids on ", ids.device().str(), " but weight on ",
               weight.device().str());
  const Tensor flat = reshape(ids, {ids.numel()});
  // Checked here to name the vocabulary; index_select then finds every id in range.
  check_index_range("embedding", flat, weight.size(0),
                    "a vocabulary of " + std::to_string(weight.size(0)) + " (weight " +
                        shape_str(weight.shape()) + ", ids " + shape_str(ids.shape()) + ")");
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.size(1));
  return reshape(index_select(weight, 0, flat), out_shape);
}

}  // namespace shrink
