// The fused attention op: one kernel call forward, one backward, in whatever layout the
// AttentionShape describes (kernels/kernel_types.h); see core/ops/attention_fused.h.
#include "core/ops/attention_fused.h"

#include "core/flop_counter.h"
#include "core/ops/common.h"

namespace shrink::ops_detail {

std::vector<std::int64_t> broadcast_strides(const Shape& from, const Shape& to) {
  std::vector<std::int64_t> strides(to.size(), 0);
  std::int64_t stride = 1;
  for (size_t a = from.size(); a-- > 0;) {
    if (from[a] != 1) strides[to.size() - from.size() + a] = stride;
    stride *= from[a];
  }
  return strides;
}

std::optional<ProblemAxes> two_problem_axes(const Shape& sizes, const std::vector<std::int64_t>& mask_strides) {
  struct Axis {
    std::int64_t size, stride;
  };
  std::vector<Axis> merged;
  for (size_t a = 0; a < sizes.size(); ++a) {
    if (sizes[a] == 1) continue;  // one index: its stride never matters
    const Axis axis{sizes[a], mask_strides[a]};
    // Adjacent axes (a, b) read as one of size a.size * b.size when a.stride = b.stride * b.size.
    if (!merged.empty() && merged.back().stride == axis.stride * axis.size)
      merged.back() = {merged.back().size * axis.size, axis.stride};
    else
      merged.push_back(axis);
  }
  if (merged.size() > 2) return std::nullopt;
  ProblemAxes p;
  if (merged.size() == 2) {
    p.outer = merged[0].size;
    p.mask_outer = merged[0].stride;
  }
  if (!merged.empty()) {
    p.inner = merged.back().size;
    p.mask_inner = merged.back().stride;
  }
  return p;
}

Tensor fused_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                       const kernels::AttentionShape& s, const Shape& out_shape) {
  Tensor out = empty_like(q, out_shape);
  Tensor lse = empty_like(q, {s.problems(), s.tq});
  count_flops(2 * s.problems() * s.tq * s.tk * (s.d + s.dv));
  const void* mask_data = mask.defined() ? mask.raw_data() : nullptr;
  backend_of(q).attention(q.dtype(), s, q.raw_data(), k.raw_data(), v.raw_data(), mask_data, out.raw_data(),
                          lse.raw_data());
  if (!needs_grad({&q, &k, &v})) return out;
  record(out, "scaled_dot_product_attention", {q, k, v},
         [q = q.detach(), k = k.detach(), v = v.detach(), mask = mask.defined() ? mask.detach() : Tensor(),
          out = out.detach(), lse, s](const Tensor& g) {
           Tensor dq = empty_like(q), dk = empty_like(k), dv = empty_like(v);
           Tensor delta = empty_like(q, {s.problems(), s.tq});
           backend_of(g).attention_backward(g.dtype(), s, q.raw_data(), k.raw_data(), v.raw_data(),
                                            mask.defined() ? mask.raw_data() : nullptr, out.raw_data(),
                                            lse.raw_data(), g.raw_data(), delta.raw_data(), dq.raw_data(),
                                            dk.raw_data(), dv.raw_data());
           return std::vector<Tensor>{dq, dk, dv};
         });
  return out;
}

}  // namespace shrink::ops_detail
