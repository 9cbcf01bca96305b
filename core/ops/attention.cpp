// scaled_dot_product_attention and multi_head_attention: the shape checks, the choice between
// the fused kernel (core/ops/attention_fused.cpp) and the composite of the ops attention is
// made of (matmul, transpose, mul_scalar, add, softmax: its gradient is theirs, the reference
// the fused kernel is tested against), and attention_mask_bias.
#include <cmath>
#include <string>
#include <vector>

#include "core/ops/attention_fused.h"
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

// A defined mask must be q's dtype and device and broadcast to the scores; `what` ends the
// message (e.g. the head count).
void check_mask(const char* op, const Tensor& mask, const Tensor& q, const Tensor& k, const Shape& scores,
                const std::string& what) {
  if (!mask.defined()) return;
  check_input(mask, "mask", q);
  const int n = static_cast<int>(scores.size());
  bool broadcasts = mask.dim() <= n;
  for (int a = 1; broadcasts && a <= mask.dim(); ++a) {
    const std::int64_t m = mask.size(mask.dim() - a);
    broadcasts = m == 1 || m == scores[n - a];
  }
  SHRINK_CHECK(broadcasts, op, ": mask ", shape_str(mask.shape()), " does not broadcast to the scores ",
               shape_str(scores), " (q ", shape_str(q.shape()), ", k ", shape_str(k.shape()), what, ")");
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
  Shape scores = q.shape();
  scores[n - 1] = k.size(n - 2);
  check_mask(kOp, mask, q, k, scores, "");
}

double resolve_scale(const char* op, double scale, std::int64_t d) {
  SHRINK_CHECK(std::isfinite(scale) && scale >= 0, op, ": scale must be finite and >= 0 (0: 1/sqrt(d)), got ",
               scale);
  return scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(d));
}

Tensor composite(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double scale) {
  Tensor scores = mul_scalar(matmul(q, transpose(k, -1, -2)), scale);
  if (mask.defined()) scores = add(scores, mask);
  return matmul(softmax(scores, -1), v);
}

// Why the fused kernel cannot run (empty: it can). `problems` are the score's leading axes.
std::string fused_refusal(const Tensor& mask, const std::optional<ops_detail::ProblemAxes>& axes,
                          std::int64_t problems, std::int64_t tq, std::int64_t tk) {
  if (mask.defined() && needs_grad({&mask})) return "the mask needs a gradient, which the fused kernel does not give";
  if (!axes) return "the mask's broadcast over the leading axes is not two strided groups";
  if (problems == 0 || tq == 0 || tk == 0) return "there are no queries or no keys";
  return "";
}

// Runs the chosen implementation: `fused` when allowed and wanted, else the composite.
template <class Fused, class Composite>
Tensor choose(const char* op, AttentionKernel kernel, const std::string& refusal, Fused fused, Composite composite) {
  if (kernel == AttentionKernel::Fused)
    SHRINK_CHECK(refusal.empty(), op, ": the fused kernel cannot run: ", refusal);
  return kernel != AttentionKernel::Composite && refusal.empty() ? fused() : composite();
}

// The mask's element strides along the score axes (all 0 without a mask).
std::vector<std::int64_t> mask_strides(const Tensor& mask, const Shape& scores) {
  return mask.defined() ? broadcast_strides(mask.shape(), scores) : std::vector<std::int64_t>(scores.size(), 0);
}

// The kernel's shape but for the tensors' layouts: problems on `axes`, the mask's row and
// column strides the last two of `strides`.
kernels::AttentionShape problem_shape(const ops_detail::ProblemAxes& axes, std::int64_t tq, std::int64_t tk,
                                      std::int64_t d, std::int64_t dv, double scale,
                                      const std::vector<std::int64_t>& strides) {
  kernels::AttentionShape sh;
  sh.outer = axes.outer, sh.inner = axes.inner, sh.tq = tq, sh.tk = tk, sh.d = d, sh.dv = dv, sh.scale = scale;
  sh.mask_outer = axes.mask_outer, sh.mask_inner = axes.mask_inner;
  sh.mask_row = strides[strides.size() - 2], sh.mask_col = strides.back();
  return sh;
}

// (…, T, f) contiguous read as problems (outer, inner) of rows of f features.
kernels::AttentionLayout contiguous_layout(std::int64_t inner, std::int64_t rows, std::int64_t features) {
  return {inner * rows * features, rows * features, features};
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                                    double scale, AttentionKernel kernel) {
  check_shapes(q, k, v, mask);
  const int n = q.dim();
  const double s = resolve_scale(kOp, scale, q.size(n - 1));
  Shape scores = q.shape();
  scores[n - 1] = k.size(n - 2);
  const std::vector<std::int64_t> strides = mask_strides(mask, scores);
  const Shape lead(scores.begin(), scores.end() - 2);
  const auto axes = two_problem_axes(lead, std::vector<std::int64_t>(strides.begin(), strides.end() - 2));
  const std::int64_t problems = numel(lead), tq = q.size(n - 2), tk = k.size(n - 2);
  return choose(kOp, kernel, fused_refusal(mask, axes, problems, tq, tk), [&] {
    kernels::AttentionShape sh = problem_shape(*axes, tq, tk, q.size(n - 1), v.size(n - 1), s, strides);
    sh.q = contiguous_layout(sh.inner, tq, sh.d);
    sh.k = contiguous_layout(sh.inner, tk, sh.d);
    sh.v = contiguous_layout(sh.inner, tk, sh.dv);
    sh.out = contiguous_layout(sh.inner, tq, sh.dv);
    Shape out_shape = q.shape();
    out_shape[n - 1] = sh.dv;
    return fused_attention(q, k, v, mask, sh, out_shape);
  }, [&] { return composite(q, k, v, mask, s); });
}

Tensor multi_head_attention(const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t heads,
                            const Tensor& mask, double scale, AttentionKernel kernel) {
  constexpr const char* op = "multi_head_attention";
  for (const auto& [t, name] : {std::pair{&q, "q"}, {&k, "k"}, {&v, "v"}}) {
    check_input(*t, name, q);
    SHRINK_CHECK(t->dim() == 3, op, ": ", name, " must be (batch, tokens, heads * features), got ",
                 shape_str(t->shape()));
  }
  SHRINK_CHECK(heads > 0 && q.size(2) % heads == 0 && v.size(2) % heads == 0, op, ": heads (", heads,
               ") must be > 0 and divide the features of q ", shape_str(q.shape()), " and v ", shape_str(v.shape()));
  SHRINK_CHECK(k.size(0) == q.size(0) && v.size(0) == q.size(0), op, ": q ", shape_str(q.shape()), ", k ",
               shape_str(k.shape()), " and v ", shape_str(v.shape()), " must have the same batch");
  SHRINK_CHECK(k.size(2) == q.size(2), op, ": k ", shape_str(k.shape()), " must have q's features (q ",
               shape_str(q.shape()), ")");
  SHRINK_CHECK(v.size(1) == k.size(1), op, ": v ", shape_str(v.shape()), " must have as many tokens as k ",
               shape_str(k.shape()));
  const std::int64_t b = q.size(0), tq = q.size(1), tk = k.size(1), d = q.size(2) / heads, dv = v.size(2) / heads;
  const Shape scores = {b, heads, tq, tk};
  check_mask(op, mask, q, k, scores, ", " + std::to_string(heads) + " heads");
  const std::vector<std::int64_t> strides = mask_strides(mask, scores);
  const double s = resolve_scale(op, scale, d);
  const ops_detail::ProblemAxes axes{b, heads, strides[0], strides[1]};
  return choose(op, kernel, fused_refusal(mask, axes, b * heads, tq, tk), [&] {
    kernels::AttentionShape sh = problem_shape(axes, tq, tk, d, dv, s, strides);
    // Row i of head h of sequence o: o * T * heads * f + i * heads * f + h * f.
    sh.q = {tq * heads * d, d, heads * d};
    sh.k = {tk * heads * d, d, heads * d};
    sh.v = {tk * heads * dv, dv, heads * dv};
    sh.out = {tq * heads * dv, dv, heads * dv};
    return fused_attention(q, k, v, mask, sh, {b, tq, heads * dv});
  }, [&] {
    const auto split = [heads](const Tensor& x) {
      return permute(reshape(x, {x.size(0), x.size(1), heads, -1}), {0, 2, 1, 3});
    };
    const Tensor out = composite(split(q), split(k), split(v), mask, s);
    return reshape(permute(out, {0, 2, 1, 3}), {b, tq, heads * dv});
  });
}

Tensor attention_mask_bias(const Tensor& attention_mask, DType dtype) {
  check_defined("attention_mask_bias", attention_mask);
  SHRINK_CHECK(attention_mask.dim() == 2, "attention mask must be (batch, tokens), got ",
               shape_str(attention_mask.shape()));
  SHRINK_CHECK(dtype != DType::Int64, "attention_mask_bias: the bias must be floating, got int64");
  const Shape shape = {attention_mask.size(0), 1, 1, attention_mask.size(1)};
  // A shape-only forward (kernels/shape_only.h) never computed the mask's values: nothing to check.
  if (kernels::shape_only()) return Tensor::empty(shape, dtype, attention_mask.device());
  NoGradGuard no_grad;
  // On the mask's own device: one number comes back, sum |m (m - 1)|, which is 0 exactly when
  // every value is 0 or 1 (NaN makes it NaN). That keeps a stray value (a token id passed by
  // mistake) from becoming a bias of +1e9 without copying the mask to the host each batch.
  const Tensor m = attention_mask.detach().to(dtype);
  if (sum(abs(mul(m, add_scalar(m, -1.0)))).item() != 0) {
    const std::vector<double> values = m.to(DType::Float64).to_vector<double>();  // the error path only
    for (size_t i = 0; i < values.size(); ++i)
      SHRINK_CHECK(values[i] == 0 || values[i] == 1, "attention mask ", shape_str(attention_mask.shape()),
                   " must hold 1 (a token) or 0 (padding), got ", values[i], " at element ", i);
  }
  // (m - 1) 1e9: 0 for a token, -1e9 for padding (exact in float32 too).
  return reshape(mul_scalar(add_scalar(m, -1.0), 1e9), shape);
}

}  // namespace shrink
