// conv2d: the 2-D convolution (cross-correlation) over NCHW, forward and backward together.
// For y = conv(x, W) + b:
//   dx = conv2d_backward_input(W, dy)   (the adjoint of conv in x: a transposed convolution)
//   dW = conv2d_backward_weight(x, dy)  (sum over images and positions of dy x-patch)
//   db = sum of dy over (n, out_h, out_w)
#include <string>

#include "core/flop_counter.h"
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace {

std::string pair_str(std::int64_t a, std::int64_t b) {
  std::string out = "(";  // appended piece by piece: GCC 12 warns falsely on "(" + string
  out += std::to_string(a);
  out += ", ";
  out += std::to_string(b);
  out += ")";
  return out;
}

kernels::Conv2dShape conv2d_shape(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                  const Conv2dOptions& o) {
  return ops_detail::conv2d_shape("conv2d", x, x.shape(), weight, bias, o);
}

// y = the backend's convolution with epilogue `post`; counts the FLOPs (the epilogue's add and
// activation are elementwise: counted by no op).
Tensor run_conv2d(const kernels::Conv2dShape& s, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const kernels::ConvEpilogue& post) {
  Tensor y = empty_like(x, {s.n, s.c_out, s.out_h(), s.out_w()});
  if (y.numel() > 0)
    backend_of(x).conv2d(x.dtype(), s, x.raw_data(), weight.raw_data(), bias.defined() ? bias.raw_data() : nullptr,
                         post, y.raw_data());
  count_flops(conv2d_flops(s, bias.defined()));
  return y;
}

}  // namespace

kernels::Conv2dShape ops_detail::conv2d_shape(const char* op, const Tensor& x, const Shape& in,
                                              const Tensor& weight, const Tensor& bias, const Conv2dOptions& o) {
  check_compatible(op, x, weight);
  const kernels::Conv2dShape s = conv2d_geometry(op, in, weight.shape(), o);
  if (bias.defined()) {
    check_compatible(op, x, bias);
    SHRINK_CHECK(bias.dim() == 1 && bias.size(0) == s.c_out, op, ": bias ", shape_str(bias.shape()),
                 " does not match the ", s.c_out, " output channels of weight ",
                 shape_str(weight.shape()));
  }
  return s;
}

std::int64_t ops_detail::conv2d_flops(const kernels::Conv2dShape& s, bool bias) {
  const std::int64_t outputs = s.n * s.c_out * s.out_h() * s.out_w();
  return 2 * outputs * (s.c_in / s.groups) * s.kh * s.kw + (bias ? outputs : 0);
}

kernels::Conv2dShape ops_detail::conv2d_geometry(const char* op, const Shape& x, const Shape& weight,
                                                 const Conv2dOptions& o) {
  SHRINK_CHECK(x.size() == 4, op, ": input must be 4-D (n, c_in, h, w), got ",
               shape_str(x), " (weight ", shape_str(weight), ")");
  SHRINK_CHECK(weight.size() == 4, op, ": weight must be 4-D (c_out, c_in / groups, kh, kw), got ",
               shape_str(weight), " (input ", shape_str(x), ")");
  SHRINK_CHECK(o.groups >= 1, op, ": groups must be >= 1, got ", o.groups);
  SHRINK_CHECK(o.stride_h >= 1 && o.stride_w >= 1, op, ": stride must be >= 1, got ",
               pair_str(o.stride_h, o.stride_w));
  SHRINK_CHECK(o.dilation_h >= 1 && o.dilation_w >= 1, op, ": dilation must be >= 1, got ",
               pair_str(o.dilation_h, o.dilation_w));
  SHRINK_CHECK(o.pad_h >= 0 && o.pad_w >= 0, op, ": padding must be >= 0, got ",
               pair_str(o.pad_h, o.pad_w));
  kernels::Conv2dShape s;
  s.n = x[0];
  s.c_in = x[1];
  s.h = x[2];
  s.w = x[3];
  s.c_out = weight[0];
  s.kh = weight[2];
  s.kw = weight[3];
  s.stride_h = o.stride_h;
  s.stride_w = o.stride_w;
  s.pad_h = o.pad_h;
  s.pad_w = o.pad_w;
  s.dilation_h = o.dilation_h;
  s.dilation_w = o.dilation_w;
  s.groups = o.groups;
  SHRINK_CHECK(s.c_in % s.groups == 0, op, ": input channels ", s.c_in,
               " are not divisible by groups ", s.groups, " (input ", shape_str(x), ")");
  SHRINK_CHECK(s.c_out % s.groups == 0, op, ": output channels ", s.c_out,
               " are not divisible by groups ", s.groups, " (weight ", shape_str(weight), ")");
  SHRINK_CHECK(weight[1] == s.c_in / s.groups, op, ": input ", shape_str(x), " has ",
               s.c_in, " channels but weight ", shape_str(weight), " expects ",
               weight[1] * s.groups, " (", weight[1], " per group, groups ", s.groups, ")");
  SHRINK_CHECK(s.kh >= 1 && s.kw >= 1, op, ": kernel of weight ", shape_str(weight),
               " is empty");
  const std::int64_t span_h = s.dilation_h * (s.kh - 1) + 1, span_w = s.dilation_w * (s.kw - 1) + 1;
  SHRINK_CHECK(span_h <= s.h + 2 * s.pad_h && span_w <= s.w + 2 * s.pad_w, op, ": kernel ",
               pair_str(s.kh, s.kw), " (dilated span ", pair_str(span_h, span_w),
               ") is larger than the padded input ", pair_str(s.h + 2 * s.pad_h, s.w + 2 * s.pad_w),
               " (input ", shape_str(x), ", weight ", shape_str(weight), ", padding ",
               pair_str(s.pad_h, s.pad_w), ")");
  return s;
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o) {
  const kernels::Conv2dShape s = conv2d_shape(x, weight, bias, o);
  Tensor y = run_conv2d(s, x, weight, bias, {});
  if (needs_grad({&x, &weight, &bias})) {
    const bool gx = x.requires_grad(), gw = weight.requires_grad();
    const bool gb = bias.defined() && bias.requires_grad();
    record(y, "conv2d", {x, weight, bias},
           // x stays alive only for the weight gradient: with frozen weights (a score pass)
           // a conv keeps nothing but its weight.
           [s, gx, gw, gb, x = gw ? x.detach() : Tensor(), w = weight.detach()](const Tensor& g) {
             Tensor dx, dw, db;
             const bool empty = g.numel() == 0;
             if (gx) {
               dx = empty_like(w, {s.n, s.c_in, s.h, s.w});
               if (dx.numel() > 0) {
                 if (empty) dx.fill_(0);
                 else backend_of(g).conv2d_backward_input(g.dtype(), s, w.raw_data(), g.raw_data(),
                                                          dx.raw_data());
               }
             }
             if (gw) {
               dw = empty_like(w);
               if (dw.numel() > 0)
                 backend_of(g).conv2d_backward_weight(g.dtype(), s, x.raw_data(), g.raw_data(),
                                                      dw.raw_data());
             }
             if (gb) db = sum(g, {0, 2, 3});
             return std::vector<Tensor>{dx, dw, db};
           });
  }
  return y;
}

Tensor conv2d_then(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o,
                   const Tensor& residual, ConvActivation activation) {
  const kernels::Conv2dShape s = conv2d_shape(x, weight, bias, o);
  const Shape out{s.n, s.c_out, s.out_h(), s.out_w()};
  if (residual.defined()) {
    check_compatible("conv2d_then", x, residual);
    SHRINK_CHECK(residual.shape() == out, "conv2d_then: residual ", shape_str(residual.shape()),
                 " does not match the convolution's output ", shape_str(out), " (input ", shape_str(x.shape()),
                 ", weight ", shape_str(weight.shape()), ")");
  }
  if (needs_grad({&x, &weight, &bias, &residual})) {  // the ops themselves, for their gradients
    Tensor y = conv2d(x, weight, bias, o);
    if (residual.defined() && activation == ConvActivation::Relu) return add_relu(y, residual);
    if (residual.defined()) y = y + residual;
    if (activation == ConvActivation::Relu) return relu(y);
    return activation == ConvActivation::Relu6 ? relu6(y) : y;
  }
  kernels::ConvEpilogue post;
  post.residual = residual.defined() ? residual.raw_data() : nullptr;
  post.activate = activation != ConvActivation::None;
  post.activation = activation == ConvActivation::Relu6 ? kernels::UnaryOp::Relu6 : kernels::UnaryOp::Relu;
  return run_conv2d(s, x, weight, bias, post);
}

}  // namespace shrink
