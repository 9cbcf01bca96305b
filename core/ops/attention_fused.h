// Private to core/ops: the fused attention op (kernels attention / attention_backward) behind
// scaled_dot_product_attention and multi_head_attention, and the planning that lays a mask's
// broadcast over the kernel's two problem axes (core/ops/attention_fused.cpp).
#pragma once
#include <optional>
#include <vector>

#include "core/tensor.h"
#include "kernels/kernel_types.h"

namespace shrink::ops_detail {

// Element strides with which a contiguous tensor of shape `from` is read as `to` (right-aligned
// broadcasting, as the shape checks have already allowed): 0 along every broadcast axis.
std::vector<std::int64_t> broadcast_strides(const Shape& from, const Shape& to);

// The leading axes of a problem set (sizes and the mask's strides along them) merged into
// (outer, inner) so that the mask offset is o * mask_outer + h * mask_inner; none when the
// mask's pattern needs more than two strided groups (a (A, 1, C) mask under (A, B, C)).
struct ProblemAxes {
  std::int64_t outer = 1, inner = 1, mask_outer = 0, mask_inner = 0;
};
std::optional<ProblemAxes> two_problem_axes(const Shape& sizes, const std::vector<std::int64_t>& mask_strides);

// out (out_shape) = attention of the problems `s` describes, recording the backward when q,
// k or v needs a gradient (the mask never gets one: callers send a mask that needs one to the
// composite). Counts the FLOPs of the two products, as the composite does.
Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                       const kernels::AttentionShape& s, const Shape& out_shape);

}  // namespace shrink::ops_detail
