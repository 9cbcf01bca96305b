// Helpers shared by the op implementations (private to core/ops).
#pragma once
#include <string>

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

// Throws a shrink::Error naming `op`, the first out-of-range index and the bound unless every
// entry of the int64 tensor `indices` is in [0, bound). Runs on the indices' device through
// the backend's find_out_of_range kernel and reads back one scalar (two when an index is
// bad), so CUDA indices are never copied to the host whole. Indices produced by our own
// kernels (argmax) are in range by construction and skip this check.
void check_index_range(const char* op, const Tensor& indices, std::int64_t bound,
                       const std::string& what);

// The shape checks of a 2-D convolution of input `x` with a weight of shape `weight`
// (c_out, c_in / groups, kh, kw), each message starting with `op`; returns the kernels' shape
// (core/ops/conv.cpp; conv2d and csr_conv2d share it).
kernels::Conv2dShape conv2d_geometry(const char* op, const Shape& x, const Shape& weight,
                                     const Conv2dOptions& o);

// conv2d_geometry's checks and the bias's, for an input shaped `in` on x's device (the ops of
// core/ops/conv.cpp and conv_chains.cpp); and a convolution's FLOPs as conv2d counts them.
kernels::Conv2dShape conv2d_shape(const char* op, const Tensor& x, const Shape& in, const Tensor& weight,
                                  const Tensor& bias, const Conv2dOptions& o);
std::int64_t conv2d_flops(const kernels::Conv2dShape& s, bool bias);

// Adjoint of a gather along `axis`: zeros of x_shape, plus src scattered and added at idx.
// src and idx (int64, already validated) have x_shape except along `axis`.
Tensor scatter_add_along(const Tensor& src, const Shape& x_shape, int axis, const Tensor& idx);

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
