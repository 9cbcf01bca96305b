#include "nn/flatten.h"

#include "core/ops.h"

namespace shrink::nn {

Tensor Flatten::forward(const Tensor& x) {
  SHRINK_CHECK(x.dim() >= 1, "Flatten: input needs a batch axis, got shape ", shape_str(x.shape()));
  return x.dim() == 2 ? x : flatten(x, 1);
}

}  // namespace shrink::nn
