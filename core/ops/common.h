// Helpers shared by the op implementations (private to core/ops).
#pragma once
#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/backend.h"

namespace shrink::ops_detail {

// The backend that runs ops on `t`'s device (the single dispatch point is kernels::backend).
kernels::Backend& backend_of(const Tensor& t);

void check_defined(const char* op, const Tensor& t);
void check_floating(const char* op, const Tensor& t);
// Same device and dtype for both operands.
void check_compatible(const char* op, const Tensor& a, const Tensor& b);

// (outer, axis size, inner) view of `shape` around `axis`.
struct AxisView {
  std::int64_t outer, dim, inner;
};
AxisView axis_view(const Shape& shape, int axis);

// Result of an op that keeps x's dtype and device.
inline Tensor empty_like(const Tensor& x, const Shape& shape) {
  return Tensor::empty(shape, x.dtype(), x.device());
}
inline Tensor empty_like(const Tensor& x) { return empty_like(x, x.shape()); }

}  // namespace shrink::ops_detail
