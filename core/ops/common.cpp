#include "core/ops/common.h"

namespace shrink::ops_detail {

kernels::Backend& backend_of(const Tensor& t) { return kernels::backend(t.device().type); }

void check_defined(const char* op, const Tensor& t) {
  SHRINK_CHECK(t.defined(), op, ": got an undefined tensor");
}

void check_floating(const char* op, const Tensor& t) {
  check_defined(op, t);
  SHRINK_CHECK(t.dtype() != DType::Int64, op, ": needs a floating-point tensor, got int64 of shape ",
               shape_str(t.shape()));
}

void check_compatible(const char* op, const Tensor& a, const Tensor& b) {
  check_floating(op, a);
  check_floating(op, b);
  SHRINK_CHECK(a.device() == b.device(), op, ": operands are on different devices (",
               a.device().str(), " and ", b.device().str(), ")");
  SHRINK_CHECK(a.dtype() == b.dtype(), op, ": operands have different dtypes (",
               dtype_name(a.dtype()), " ", shape_str(a.shape()), " and ", dtype_name(b.dtype()),
               " ", shape_str(b.shape()), ")");
}

AxisView axis_view(const Shape& shape, int axis) {
  return {prod(shape, 0, axis), shape[axis], prod(shape, axis + 1, static_cast<int>(shape.size()))};
}

}  // namespace shrink::ops_detail
