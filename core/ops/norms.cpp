// unit_norms: the L1 or L2 norm of every slice of a tensor along one axis, in double, on the
// tensor's device (kernel unit_norm). Not differentiable: pruning reads it as scores.
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

Tensor unit_norms(const Tensor& x, std::int64_t axis, int p) {
  check_floating("unit_norms", x);
  SHRINK_CHECK(p == 1 || p == 2, "unit_norms: p must be 1 (L1) or 2 (L2), got ", p);
  SHRINK_CHECK(x.dim() >= 1, "unit_norms: needs a tensor with at least one axis, got shape ",
               shape_str(x.shape()));
  const int a = normalize_axis("unit_norms", axis, x.dim());
  const AxisView v = axis_view(x.shape(), a);
  Tensor out = Tensor::empty({v.dim}, DType::Float64, x.device());
  if (v.dim > 0)
    backend_of(x).unit_norm(x.dtype(), p, v.outer, v.dim, v.inner, x.raw_data(),
                            static_cast<double*>(out.raw_data()));
  return out;
}

}  // namespace shrink
