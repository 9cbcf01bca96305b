#include "nn/flatten.h"

#include "core/ops.h"

namespace shrink::nn {

Tensor Flatten::forward(const Tensor& x) {
  SHRINK_CHECK(x.dim() >= 1, "Flatten: input needs a batch axis, got shape ", shape_str(x.shape()));
  return x.dim() == 2 ? x : flatten(x, 1);
}

Shape Flatten::output_shape(const Shape& input_shape) const { return {numel(input_shape)}; }

}  // namespace shrink::nn
