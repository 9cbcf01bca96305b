// The vocabulary of kernel parameters: op enums, the broadcast description and the optimizer
// hyper-parameters. Plain data, usable from host and device code (kernels/formulas/ reads it).
#pragma once
#include <cstdint>

#include "kernels/formulas/hd.h"
#include "kernels/types.h"

namespace shrink::kernels {

constexpr int kMaxDims = 8;

// A broadcast elementwise problem after dimension collapsing: the output is contiguous with
// `shape`; operand strides are in elements and are 0 along broadcast axes.
struct BroadcastShape {
  int ndim = 0;
  std::int64_t shape[kMaxDims] = {};
  std::int64_t stride_a[kMaxDims] = {};
  std::int64_t stride_b[kMaxDims] = {};
};

// The one list of binary and unary ops: the enums and every per-op switch (CPU loops, CUDA
// launches) expand from these, so an op added here cannot be missing from a case list.
// AddRelu is max(a + b, 0) in one pass: a residual block's add and the ReLU after it.
#define SHRINK_BINARY_OPS(X) X(Add) X(Sub) X(Mul) X(Div) X(AddRelu)

// y = f(x, alpha). The backward kind takes (x, y, dy) and writes dx. PowScalar is x^alpha,
// AddScalar x + alpha, MulScalar x * alpha, GeluTanh the tanh approximation of GELU (Hendrycks
// & Gimpel 2016, eq. in section 2; PyTorch's approximate='tanh'); the formulas are in
// kernels/formulas/unary.h.
#define SHRINK_UNARY_OPS(X)                                                                   \
  X(Neg) X(Exp) X(Log) X(Sqrt) X(Relu) X(Relu6) X(Gelu) X(GeluTanh) X(Tanh) X(Sigmoid)        \
  X(PowScalar) X(AddScalar) X(MulScalar) X(Abs) X(Sign) X(Square)

#define SHRINK_ENUM_ENTRY(name) name,
enum class BinaryOp : std::uint8_t { SHRINK_BINARY_OPS(SHRINK_ENUM_ENTRY) };
enum class UnaryOp : std::uint8_t { SHRINK_UNARY_OPS(SHRINK_ENUM_ENTRY) };
#undef SHRINK_ENUM_ENTRY

enum class ReduceOp : std::uint8_t { Sum, Max };

// One optimizer update over one parameter tensor, fused into a single pass.
struct SgdParams {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool first_step = false;  // PyTorch initialises the buffer to the first gradient
};
struct AdamWParams {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  std::int64_t step = 1;  // 1-based, for bias correction
};

// A 2-D convolution (cross-correlation, as PyTorch) over NCHW buffers:
//   x (n, c_in, h, w), weight (c_out, c_in / groups, kh, kw), y (n, c_out, out_h, out_w),
//   out = (in + 2 pad - dilation (k - 1) - 1) / stride + 1.
// Output channel o of group g = o / (c_out / groups) reads input channels
// [g c_in/groups, (g+1) c_in/groups). core/ops/conv.cpp validates every field.
struct Conv2dShape {
  std::int64_t n = 0, c_in = 0, h = 0, w = 0, c_out = 0, kh = 0, kw = 0;
  std::int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  std::int64_t groups = 1;
  constexpr std::int64_t out_h() const { return (h + 2 * pad_h - dilation_h * (kh - 1) - 1) / stride_h + 1; }
  constexpr std::int64_t out_w() const { return (w + 2 * pad_w - dilation_w * (kw - 1) - 1) / stride_w + 1; }
};

// What conv2d does to its output after the bias (kernels/kernel_list.h): y = act(y + residual),
// the residual block's add and the activation in the pass that writes y (each backend adds them
// while the output is still in registers or cache, instead of two more passes over memory).
// Values: exactly those of the separate ops, in their order ((conv + bias) + residual, then
// formulas/unary.h's activation).
struct ConvEpilogue {
  const void* residual = nullptr;      // like y (n, c_out, out_h, out_w) and its dtype; null: none
  bool activate = false;               // apply `activation` last
  UnaryOp activation = UnaryOp::Relu;  // Relu or Relu6 (core/ops/conv.cpp refuses others)
  constexpr bool none() const { return residual == nullptr && !activate; }
};

// One MobileNetV2 inverted residual block for the inverted_residual_chain kernel
// (kernels/kernel_list.h), on x shaped as `expand`'s input (or `depthwise`'s without an expand):
//   e = relu6(conv(x, expand_weight) + expand_bias)       1x1 (absent when has_expand is false: e = x)
//   d = relu6(conv(e, depthwise_weight) + depthwise_bias) 3x3, one filter a channel
//   y = conv(d, project_weight) + project_bias (+ x when residual)   1x1
// A bias may be null.
struct InvertedResidualBlock {
  Conv2dShape expand, depthwise, project;
  bool has_expand = true, residual = false;
  const void* expand_weight = nullptr;
  const void* expand_bias = nullptr;
  const void* depthwise_weight = nullptr;
  const void* depthwise_bias = nullptr;
  const void* project_weight = nullptr;
  const void* project_bias = nullptr;
};

// Max or average pooling over windows of NCHW planes (x (n, c, h, w) -> y (n, c, out_h, out_w)),
// out = (in + 2 pad - k) / stride + 1 (floor mode). Max treats padding as -inf; average divides
// by the whole window, padding included (PyTorch's count_include_pad = true).
enum class PoolOp : std::uint8_t { Max, Average };
struct Pool2dShape {
  std::int64_t n = 0, c = 0, h = 0, w = 0, kh = 0, kw = 0;
  std::int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  constexpr std::int64_t out_h() const { return (h + 2 * pad_h - kh) / stride_h + 1; }
  constexpr std::int64_t out_w() const { return (w + 2 * pad_w - kw) / stride_w + 1; }
};

// Fused scaled dot-product attention over outer x inner independent problems (a batch and its
// heads). Problem (o, h) reads row i of q at q + o*q.outer + h*q.inner + i*q.row, its features
// contiguous; k, v and out likewise (their gradients share their layouts). Both the
// contiguous (B, H, T, d) layout and the projections' own (B, T, H*d) one are strides of
// this form, so multi-head attention needs no head permutes. The additive mask, when given,
// is read at o*mask_outer + h*mask_inner + i*mask_row + j*mask_col (0 along a broadcast
// axis). The log-sum-exp of each score row (lse) and the backward's delta_i = dout_i . out_i
// are contiguous (outer * inner, tq).
struct AttentionLayout {
  std::int64_t outer = 0, inner = 0, row = 0;
};
struct AttentionShape {
  std::int64_t outer = 1, inner = 1, tq = 0, tk = 0, d = 0, dv = 0;
  double scale = 1;
  AttentionLayout q, k, v, out;
  std::int64_t mask_outer = 0, mask_inner = 0, mask_row = 0, mask_col = 0;
  SHRINK_HD constexpr std::int64_t problems() const { return outer * inner; }
};

}  // namespace shrink::kernels
