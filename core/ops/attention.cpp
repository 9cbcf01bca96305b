// scaled_dot_product_attention, composed from the ops it is made of (matmul, transpose,
// mul_scalar, add, softmax), so its gradient is theirs and the gradient check comes free.
// A fused kernel with an online softmax is checked against this composite.
#include <cmath>
#include <vector>

#include "core/ops/common.h"
#include "kernels/shape_only.h"

namespace shrink {

using namespace ops_detail;

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

void check_input(const Tensor& t, const char* name, const Tensor& q) {
  check_floating(kOp, t);
  SHRINK_CHECK(t.dim() >= 2, kOp, ": ", name, " must be (..., T, d), got ", shape_str(t.shape()));
  SHRINK_CHECK(t.dtype() == q.dtype() && t.device() == q.device(), kOp, ": ", name, " is ", dtype_name(t.dtype()),
               " on ", t.device().str(), " but q is ", dtype_name(q.dtype()), " on ", q.device().str());
}

// q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv): the same leading axes, q and k the same d,
// k and v the same Tk; a mask broadcasts to (..., Tq, Tk).
void check_shapes(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask) {
  check_input(q, "q", q);
  check_input(k, "k", q);
  check_input(v, "v", q);
  const int n = q.dim();
  bool same_lead = k.dim() == n && v.dim() == n;
  for (int a = 0; same_lead && a < n - 2; ++a) same_lead = k.size(a) == q.size(a) && v.size(a) == q.size(a);
  SHRINK_CHECK(same_lead, kOp, ": q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), " and v ",
               shape_str(v.shape()), " must share their leading axes (..., T, d)");
  SHRINK_CHECK(k.size(n - 1) == q.size(n - 1), kOp, ": k ", shape_str(k.shape()), " must have q's feature size ",
               q.size(n - 1), " (q ", shape_str(q.shape()), ")");
  SHRINK_CHECK(v.size(n - 2) == k.size(n - 2), kOp, ": v ", shape_str(v.shape()), " must have as many keys as k ",
               shape_str(k.shape()));
  if (!mask.defined()) return;
  check_input(mask, "mask", q);
  Shape scores = q.shape();
  scores[n - 1] = k.size(n - 2);
  bool broadcasts = mask.dim() <= n;
  for (int a = 1; broadcasts && a <= mask.dim(); ++a) {
    const std::int64_t m = mask.size(mask.dim() - a);
    broadcasts = m == 1 || m == scores[n - a];
  }
  SHRINK_CHECK(broadcasts, kOp, ": mask ", shape_str(mask.shape()), " does not broadcast to the scores ",
               shape_str(scores), " (q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), ")");
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                                    double scale) {
  check_shapes(q, k, v, mask);
  SHRINK_CHECK(std::isfinite(scale) && scale >= 0, kOp, ": scale must be finite and >= 0 (0: 1/sqrt(d)), got ",
               scale);
  const double s = scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(q.size(q.dim() - 1)));
  Tensor scores = mul_scalar(matmul(q, transpose(k, -1, -2)), s);
  if (mask.defined()) scores = add(scores, mask);
  return matmul(softmax(scores, -1), v);
}

Tensor attention_mask_bias(const Tensor& attention_mask, DType dtype) {
  check_defined("attention_mask_bias", attention_mask);
  SHRINK_CHECK(attention_mask.dim() == 2, "attention mask must be (batch, tokens), got ",
               shape_str(attention_mask.shape()));
  SHRINK_CHECK(dtype != DType::Int64, "attention_mask_bias: the bias must be floating, got int64");
  const Shape shape = {attention_mask.size(0), 1, 1, attention_mask.size(1)};
  // A shape-only forward (kernels/shape_only.h) never computed the mask's values: nothing to check.
  if (kernels::shape_only()) return Tensor::empty(shape, dtype, attention_mask.device());
  // Built on the host: the mask is B x T values, and checking that each is 0 or 1 there keeps
  // a stray value (a token id passed by mistake) from becoming a bias of +1e9.
  const std::vector<double> m = attention_mask.detach().to(DType::Float64).to_vector<double>();
  std::vector<double> bias(m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    SHRINK_CHECK(m[i] == 0 || m[i] == 1, "attention mask ", shape_str(attention_mask.shape()),
                 " must hold 1 (a token) or 0 (padding), got ", m[i], " at element ", i);
    bias[i] = m[i] == 1 ? 0.0 : -1e9;
  }
  return Tensor::from_vector(bias, shape, Device::cpu()).to(dtype).to(attention_mask.device());
}

}  // namespace shrink
