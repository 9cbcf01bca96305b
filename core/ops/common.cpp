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

namespace shrink::ops_detail {

void check_index_range(const char* op, const Tensor& indices, std::int64_t bound,
                       const std::string& what) {
  const std::int64_t n = indices.numel();
  if (n == 0) return;
  kernels::Backend& be = backend_of(indices);
  const auto* idx = static_cast<const std::int64_t*>(indices.raw_data());
  Tensor first_bad = Tensor::empty({1}, DType::Int64, indices.device());
  be.find_out_of_range(n, idx, bound, static_cast<std::int64_t*>(first_bad.raw_data()));
  std::int64_t at = n;
  be.copy_to_host(&at, first_bad.raw_data(), sizeof at);
  if (at == n) return;
  std::int64_t value = 0;
  be.copy_to_host(&value, idx + at, sizeof value);
  fail(op, ": index ", value, " (at position ", at, " of the indices) is out of range [0, ",
       bound, ") for ", what);
}

}  // namespace shrink::ops_detail
