// matmul (2-D and batched) and linear, with backward through the same GEMM kernel:
// for C = A B:  dA = dC B^T,  dB = A^T dC  (transposes are GEMM flags, never copies).
#include "core/flop_counter.h"
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace {

// C (batch, m, n) = op(A) op(B) over `batch` matrices; stride 0 broadcasts an operand.
// A is stored (rows_a, cols_a) per batch, B (rows_b, cols_b).
Tensor batched_gemm(const Tensor& a, bool ta, std::int64_t rows_a, std::int64_t cols_a,
                    std::int64_t stride_a, const Tensor& b, bool tb, std::int64_t rows_b,
                    std::int64_t cols_b, std::int64_t stride_b, std::int64_t batch) {
  const std::int64_t m = ta ? cols_a : rows_a, k = ta ? rows_a : cols_a;
  const std::int64_t n = tb ? rows_b : cols_b;
  Tensor c = empty_like(a, {batch, m, n});
  if (c.numel() == 0) return c;
  if (k == 0) {
    c.fill_(0);
    return c;
  }
  backend_of(a).gemm(a.dtype(), ta, tb, m, n, k, 1.0, a.raw_data(), cols_a, stride_a, b.raw_data(),
                     cols_b, stride_b, 0.0, c.raw_data(), n, m * n, batch);
  return c;
}

// 2-D: op(A) op(B) with A (ra, ca), B (rb, cb).
Tensor gemm2d(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  Tensor c = batched_gemm(a, ta, a.size(0), a.size(1), 0, b, tb, b.size(0), b.size(1), 0, 1);
  return reshape(c, {c.size(1), c.size(2)});
}

Shape with_last_two(Shape lead, std::int64_t r, std::int64_t c) {
  lead.push_back(r);
  lead.push_back(c);
  return lead;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_compatible("matmul", a, b);
  SHRINK_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: operands must have at least 2 dimensions, got ",
               shape_str(a.shape()), " and ", shape_str(b.shape()));
  const std::int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  SHRINK_CHECK(b.size(-2) == k, "matmul: inner dimensions differ: ", shape_str(a.shape()), " @ ",
               shape_str(b.shape()));
  const Shape lead_a(a.shape().begin(), a.shape().end() - 2);
  const Shape lead_b(b.shape().begin(), b.shape().end() - 2);

  if (lead_b.empty()) {
    // (..., m, k) @ (k, n): one GEMM over all leading rows.
    const std::int64_t rows = a.numel() / std::max<std::int64_t>(k, 1);
    Tensor a2 = reshape(a.detach(), {rows, k});
    count_flops(2 * rows * k * n);
    Tensor out = reshape(gemm2d(a2, false, b, false), with_last_two(lead_a, m, n));
    if (needs_grad({&a, &b})) {
      const bool ga = a.requires_grad(), gb = b.requires_grad();
      // A stays alive only for B's gradient.
      record(out, "matmul", {a, b}, [a2 = gb ? a2 : Tensor(), rows, b = b.detach(), ga, gb,
                                     a_shape = a.shape()](const Tensor& g) {
        Tensor g2 = reshape(g, {rows, b.size(1)});
        return std::vector<Tensor>{ga ? reshape(gemm2d(g2, false, b, true), a_shape) : Tensor(),
                                   gb ? gemm2d(a2, true, g2, false) : Tensor()};
      });
    }
    return out;
  }

  SHRINK_CHECK(lead_a.empty() || lead_a == lead_b, "matmul: batch dimensions differ: ",
               shape_str(a.shape()), " @ ", shape_str(b.shape()));
  const std::int64_t batch = numel(lead_b);
  const std::int64_t stride_a = lead_a.empty() ? 0 : m * k;
  count_flops(2 * batch * m * k * n);
  Tensor out = reshape(batched_gemm(a, false, m, k, stride_a, b, false, k, n, k * n, batch),
                       with_last_two(lead_b, m, n));
  if (needs_grad({&a, &b})) {
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    record(out, "matmul", {a, b},
           // A stays alive only for B's gradient, B only for A's.
           [a = gb ? a.detach() : Tensor(), b = ga ? b.detach() : Tensor(), a_shape = a.shape(),
            b_shape = b.shape(), ga, gb, m, k, n, batch, stride_a](const Tensor& g) {
             Tensor grad_a, grad_b;
             if (ga) {  // dA_i = dC_i B_i^T, summed over the batch when A was broadcast
               Tensor per = batched_gemm(g, false, m, n, m * n, b, true, k, n, k * n, batch);
               grad_a = stride_a == 0 ? reshape(sum(per, {0}), a_shape) : reshape(per, a_shape);
             }
             if (gb)  // dB_i = A_i^T dC_i
               grad_b = reshape(batched_gemm(a, true, m, k, stride_a, g, false, m, n, m * n, batch),
                                b_shape);
             return std::vector<Tensor>{grad_a, grad_b};
           });
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_compatible("linear", x, weight);
  SHRINK_CHECK(weight.dim() == 2, "linear: weight must be (out_features, in_features), got ",
               shape_str(weight.shape()));
  const std::int64_t in = weight.size(1), out_features = weight.size(0);
  SHRINK_CHECK(x.dim() >= 1 && x.size(-1) == in, "linear: input ", shape_str(x.shape()),
               " does not end in in_features = ", in, " of weight ", shape_str(weight.shape()));
  if (bias.defined()) {
    check_compatible("linear", x, bias);
    SHRINK_CHECK(bias.dim() == 1 && bias.size(0) == out_features, "linear: bias ",
                 shape_str(bias.shape()), " does not match out_features = ", out_features);
  }
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  const std::int64_t rows = in == 0 ? 0 : x.numel() / in;
  Tensor x2 = reshape(x.detach(), {rows, in});
  Tensor y = gemm2d(x2, false, weight, true);  // (rows, out) = x W^T
  count_flops(rows * (2 * in * out_features + (bias.defined() ? out_features : 0)));
  if (bias.defined()) y = add(y, bias.detach());
  y = reshape(y, out_shape);
  if (needs_grad({&x, &weight, &bias})) {
    const bool gx = x.requires_grad(), gw = weight.requires_grad();
    const bool gb = bias.defined() && bias.requires_grad();
    record(y, "linear", {x, weight, bias},
           // x stays alive only for the weight gradient.
           [x2 = gw ? x2 : Tensor(), rows, w = weight.detach(), gx, gw, gb, x_shape = x.shape()](const Tensor& g) {
             Tensor g2 = reshape(g, {rows, w.size(0)});
             return std::vector<Tensor>{gx ? reshape(gemm2d(g2, false, w, false), x_shape) : Tensor(),
                                        gw ? gemm2d(g2, true, x2, false) : Tensor(),
                                        gb ? sum(g2, {0}) : Tensor()};
           });
  }
  return y;
}

}  // namespace shrink
