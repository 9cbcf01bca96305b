// csr_linear: y = x W^T + b with W (out, in) stored as CSR (row_ptr, col_idx, values);
// csr_conv2d: the same product over the unfolded input of a convolution (below).
// Backward, for L with dL/dy = dy (rows, out):
//   dx = dy W                                (transposed SpMM over the stored entries)
//   dvalues[e] = sum_n dy[n, r(e)] x[n, c(e)] (the dense dW = dy^T x sampled at the entries)
//   dbias = sum_n dy[n, :]
// The kernels are the backend's csr_* entries (kernels/kernel_list.h); the CUDA backend does
// not provide them yet, so CUDA tensors get its Unsupported error naming the kernel.
#include <vector>

#include "core/flop_counter.h"
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace {

// Monotone row_ptr from 0 to nnz and every column in [0, in): O(out + nnz), cheap next to
// the O(batch * nnz) product, and it keeps a corrupt checkpoint from reading out of bounds.
void check_csr(const char* op, const Tensor& values, const Tensor& row_ptr, const Tensor& col_idx,
               std::int64_t in_features) {
  SHRINK_CHECK(row_ptr.defined() && row_ptr.dtype() == DType::Int64 && row_ptr.dim() == 1 &&
                   row_ptr.size(0) >= 1,
               op, ": row_ptr must be a 1-D int64 tensor (out_features + 1)");
  SHRINK_CHECK(col_idx.defined() && col_idx.dtype() == DType::Int64 && col_idx.dim() == 1,
               op, ": col_idx must be a 1-D int64 tensor (nnz)");
  SHRINK_CHECK(values.dim() == 1 && values.size(0) == col_idx.size(0), op, ": values ",
               shape_str(values.shape()), " and col_idx ", shape_str(col_idx.shape()),
               " must both be (nnz)");
  SHRINK_CHECK(row_ptr.device() == values.device() && col_idx.device() == values.device(),
               op, ": values on ", values.device().str(), ", row_ptr on ",
               row_ptr.device().str(), " and col_idx on ", col_idx.device().str(),
               " must share one device");
  // The structure is read on the host: in place on the CPU, through a copy for a device.
  const bool on_cpu = values.device().is_cpu();
  std::vector<std::int64_t> row_ptr_copy, col_idx_copy;
  if (!on_cpu) {
    row_ptr_copy = row_ptr.to_vector<std::int64_t>();
    col_idx_copy = col_idx.to_vector<std::int64_t>();
  }
  const std::int64_t* rp = on_cpu ? row_ptr.data<std::int64_t>() : row_ptr_copy.data();
  const std::int64_t out = row_ptr.size(0) - 1, nnz = col_idx.size(0);
  SHRINK_CHECK(rp[0] == 0 && rp[out] == nnz, op, ": row_ptr must run from 0 to nnz = ", nnz,
               ", got ", rp[0], " .. ", rp[out]);
  for (std::int64_t r = 0; r < out; ++r)
    SHRINK_CHECK(rp[r] <= rp[r + 1], op, ": row_ptr decreases at row ", r);
  const std::int64_t* ci = on_cpu ? col_idx.data<std::int64_t>() : col_idx_copy.data();
  for (std::int64_t e = 0; e < nnz; ++e)
    SHRINK_CHECK(ci[e] >= 0 && ci[e] < in_features, op, ": col_idx[", e, "] = ", ci[e],
                 " is outside [0, in_features = ", in_features, ")");
}

}  // namespace

Tensor csr_linear(const Tensor& x, const Tensor& values, const Tensor& row_ptr,
                  const Tensor& col_idx, std::int64_t in_features, const Tensor& bias) {
  check_compatible("csr_linear", x, values);
  check_csr("csr_linear", values, row_ptr, col_idx, in_features);
  const std::int64_t out_features = row_ptr.size(0) - 1, in = in_features;
  SHRINK_CHECK(x.dim() >= 1 && x.size(-1) == in, "csr_linear: input ", shape_str(x.shape()),
               " does not end in in_features = ", in);
  if (bias.defined()) {
    check_compatible("csr_linear", x, bias);
    SHRINK_CHECK(bias.dim() == 1 && bias.size(0) == out_features, "csr_linear: bias ",
                 shape_str(bias.shape()), " does not match out_features = ", out_features);
  }
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  const std::int64_t rows = in == 0 ? 0 : x.numel() / in;
  Tensor x2 = reshape(x.detach(), {rows, in});                       // (rows, in)
  Tensor y = empty_like(x, {rows, out_features});                    // (rows, out)
  const auto* rp = static_cast<const std::int64_t*>(row_ptr.raw_data());
  const auto* ci = static_cast<const std::int64_t*>(col_idx.raw_data());
  backend_of(x).csr_linear(x.dtype(), rows, out_features, in, rp, ci, values.raw_data(),
                           x2.raw_data(), bias.defined() ? bias.raw_data() : nullptr,
                           y.raw_data());
  y = reshape(y, out_shape);
  count_flops(rows * (2 * col_idx.size(0) + (bias.defined() ? out_features : 0)));
  if (needs_grad({&x, &values, &bias})) {
    const bool gx = x.requires_grad(), gv = values.requires_grad();
    const bool gb = bias.defined() && bias.requires_grad();
    record(y, "csr_linear", {x, values, bias},
           [x2, v = values.detach(), row_ptr, col_idx, gx, gv, gb, x_shape = x.shape()](
               const Tensor& g) {
             const std::int64_t n = x2.size(0), in_f = x2.size(1), out_f = row_ptr.size(0) - 1;
             Tensor g2 = reshape(g, {n, out_f});  // (rows, out), contiguous
             Tensor dx, dv;
             kernels::Backend& be = backend_of(g2);
             const auto* rp = static_cast<const std::int64_t*>(row_ptr.raw_data());
             const auto* ci = static_cast<const std::int64_t*>(col_idx.raw_data());
             if (gx) {
               dx = empty_like(x2, {n, in_f});
               be.csr_linear_backward_input(g2.dtype(), n, out_f, in_f, rp, ci, v.raw_data(),
                                            g2.raw_data(), dx.raw_data());
               dx = reshape(dx, x_shape);
             }
             if (gv) {
               dv = empty_like(v);
               be.csr_sampled_gradient(g2.dtype(), n, out_f, in_f, rp, ci, g2.raw_data(),
                                       x2.raw_data(), dv.raw_data());
             }
             return std::vector<Tensor>{dx, dv, gb ? sum(g2, {0}) : Tensor()};
           });
  }
  return y;
}

// csr_conv2d: y[b, r] = bias[r] + sum_{e in row r} v[e] col(x_b)[c(e)], W (c_out, c_in kh kw)
// over the unfolded input of all channels. Backward, with dy (n, c_out, oh, ow):
//   dx = col2im(W^T dy)                    (the adjoint of the unfold-and-multiply)
//   dvalues[e] = sum_{b, p} dy[b, r(e), p] col(x_b)[c(e), p]
//   dbias = sum of dy over (n, oh, ow)
Tensor csr_conv2d(const Tensor& x, const Tensor& values, const Tensor& row_ptr, const Tensor& col_idx,
                  std::int64_t kernel_h, std::int64_t kernel_w, const Tensor& bias, const Conv2dOptions& o) {
  check_compatible("csr_conv2d", x, values);
  SHRINK_CHECK(x.dim() == 4, "csr_conv2d: input must be 4-D (n, c_in, h, w), got ", shape_str(x.shape()));
  SHRINK_CHECK(row_ptr.defined() && row_ptr.dim() == 1 && row_ptr.size(0) >= 1,
               "csr_conv2d: row_ptr must be a 1-D int64 tensor (out_channels + 1)");
  SHRINK_CHECK(o.groups >= 1 && x.size(1) % o.groups == 0, "csr_conv2d: input ", shape_str(x.shape()),
               " has channels not divisible by groups ", o.groups);
  const std::int64_t c_out = row_ptr.size(0) - 1, per_group_in = x.size(1) / o.groups;
  const kernels::Conv2dShape s =
      conv2d_geometry("csr_conv2d", x.shape(), {c_out, per_group_in, kernel_h, kernel_w}, o);
  const std::int64_t taps = s.kh * s.kw, k = s.c_in * taps;
  check_csr("csr_conv2d", values, row_ptr, col_idx, k);
  if (s.groups > 1) {  // each row reads its own group's channels only
    const auto rp = row_ptr.to_vector<std::int64_t>(), ci = col_idx.to_vector<std::int64_t>();
    const std::int64_t out_per_group = c_out / s.groups, span = per_group_in * taps;
    for (std::int64_t r = 0; r < c_out; ++r)
      for (std::int64_t e = rp[r]; e < rp[r + 1]; ++e)
        SHRINK_CHECK(ci[e] / span == r / out_per_group, "csr_conv2d: col_idx[", e, "] = ", ci[e],
                     " of output channel ", r, " reads input channel ", ci[e] / taps, ", outside its group ",
                     r / out_per_group, " of ", s.groups);
  }
  if (bias.defined()) {
    check_compatible("csr_conv2d", x, bias);
    SHRINK_CHECK(bias.dim() == 1 && bias.size(0) == c_out, "csr_conv2d: bias ", shape_str(bias.shape()),
                 " does not match out_channels = ", c_out);
  }
  const std::int64_t positions = s.out_h() * s.out_w(), outputs = s.n * c_out * positions;
  const Tensor xc = x.detach();
  Tensor y = empty_like(x, {s.n, c_out, s.out_h(), s.out_w()});
  const auto* rp = static_cast<const std::int64_t*>(row_ptr.raw_data());
  const auto* ci = static_cast<const std::int64_t*>(col_idx.raw_data());
  if (outputs > 0)
    backend_of(x).csr_conv2d(x.dtype(), s, rp, ci, values.raw_data(), xc.raw_data(),
                             bias.defined() ? bias.raw_data() : nullptr, y.raw_data());
  count_flops(2 * s.n * positions * col_idx.size(0) + (bias.defined() ? outputs : 0));
  if (needs_grad({&x, &values, &bias})) {
    const bool gx = x.requires_grad(), gv = values.requires_grad();
    const bool gb = bias.defined() && bias.requires_grad();
    record(y, "csr_conv2d", {x, values, bias},
           [s, xc, v = values.detach(), row_ptr, col_idx, gx, gv, gb](const Tensor& gc) {
             Tensor dx, dv;
             kernels::Backend& be = backend_of(gc);
             const auto* rp = static_cast<const std::int64_t*>(row_ptr.raw_data());
             const auto* ci = static_cast<const std::int64_t*>(col_idx.raw_data());
             const bool empty = gc.numel() == 0;
             if (gx) {
               dx = empty_like(xc);
               if (empty) dx.fill_(0);
               else if (dx.numel() > 0)
                 be.csr_conv2d_backward_input(gc.dtype(), s, rp, ci, v.raw_data(), gc.raw_data(), dx.raw_data());
             }
             if (gv) {
               dv = empty_like(v);
               if (empty) dv.fill_(0);
               else if (dv.numel() > 0)
                 be.csr_conv2d_backward_values(gc.dtype(), s, rp, ci, xc.raw_data(), gc.raw_data(), dv.raw_data());
             }
             return std::vector<Tensor>{dx, dv, gb ? sum(gc, {0, 2, 3}) : Tensor()};
           });
  }
  return y;
}

}  // namespace shrink
