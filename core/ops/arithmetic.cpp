// add, sub, mul, div with NumPy broadcasting; scalar forms; sum_to (broadcast's adjoint).
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace {

// Operand strides against the broadcast output, with adjacent axes merged when both
// operands are contiguous across them (fewer, longer rows for the kernel).
kernels::BroadcastShape describe(const Shape& out, const Shape& a, const Shape& b) {
  const int n = static_cast<int>(out.size());
  std::vector<std::int64_t> sa(n, 0), sb(n, 0);
  auto fill = [n](const Shape& s, std::vector<std::int64_t>& st) {
    std::int64_t acc = 1;
    const int offset = n - static_cast<int>(s.size());
    for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
      st[i + offset] = s[i] == 1 ? 0 : acc;
      acc *= s[i];
    }
  };
  fill(a, sa);
  fill(b, sb);
  kernels::BroadcastShape d;
  for (int i = 0; i < n; ++i) {
    if (out[i] == 1) continue;  // size-1 axes carry no information
    if (d.ndim > 0) {
      const int j = d.ndim - 1;
      // Collapsed axis j then axis i merge when, for each operand, stride[j] == stride[i] * out[i].
      if (d.stride_a[j] == sa[i] * out[i] && d.stride_b[j] == sb[i] * out[i]) {
        d.shape[j] *= out[i];
        d.stride_a[j] = sa[i];
        d.stride_b[j] = sb[i];
        continue;
      }
    }
    SHRINK_CHECK(d.ndim < kernels::kMaxDims, "broadcast: more than ", kernels::kMaxDims,
                 " non-mergeable dimensions in ", shape_str(out));
    d.shape[d.ndim] = out[i];
    d.stride_a[d.ndim] = sa[i];
    d.stride_b[d.ndim] = sb[i];
    ++d.ndim;
  }
  return d;
}

Tensor binary_forward(kernels::BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  check_compatible(name, a, b);
  const Shape out_shape = broadcast_shapes(name, a.shape(), b.shape());
  Tensor out = empty_like(a, out_shape);
  if (out.numel() == 0) return out;
  backend_of(a).binary(op, a.dtype(), describe(out_shape, a.shape(), b.shape()), a.raw_data(),
                       b.raw_data(), out.raw_data());
  return out;
}

Tensor unary_scalar(kernels::UnaryOp op, const Tensor& x, double alpha) {
  Tensor out = empty_like(x);
  backend_of(x).unary(op, x.dtype(), x.numel(), alpha, x.raw_data(), out.raw_data());
  return out;
}

}  // namespace

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const int lead = static_cast<int>(grad.dim() - shape.size());
  std::vector<std::int64_t> axes;
  for (int i = 0; i < grad.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && grad.shape()[i] != 1)) axes.push_back(i);
  return reshape(sum(grad, axes, false), shape);
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::BinaryOp::Add, "add", a, b);
  if (needs_grad({&a, &b})) {
    Shape sa = a.shape(), sb = b.shape();
    record(out, "add", {a, b}, [sa, sb](const Tensor& g) {
      return std::vector<Tensor>{sum_to(g, sa), sum_to(g, sb)};
    });
  }
  return out;
}

Tensor add_relu(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::BinaryOp::AddRelu, "add_relu", a, b);
  if (needs_grad({&a, &b})) {
    Shape sa = a.shape(), sb = b.shape();
    // d/da = d/db = [a + b > 0] = [out > 0]: relu's derivative read off its output, so only
    // the output stays alive until backward.
    const Tensor kept = out.detach();
    record(out, "add_relu", {a, b}, [sa, sb, kept](const Tensor& g) {
      Tensor masked = empty_like(g);
      backend_of(g).unary_backward(kernels::UnaryOp::Relu, g.dtype(), g.numel(), 0, kept.raw_data(),
                                   kept.raw_data(), g.raw_data(), masked.raw_data());
      return std::vector<Tensor>{sum_to(masked, sa), sum_to(masked, sb)};
    });
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::BinaryOp::Sub, "sub", a, b);
  if (needs_grad({&a, &b})) {
    Shape sa = a.shape(), sb = b.shape();
    record(out, "sub", {a, b}, [sa, sb](const Tensor& g) {
      return std::vector<Tensor>{sum_to(g, sa), sum_to(neg(g), sb)};
    });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::BinaryOp::Mul, "mul", a, b);
  if (needs_grad({&a, &b})) {
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    // Each factor stays alive only for the other's gradient.
    record(out, "mul", {a, b}, [a = gb ? a.detach() : Tensor(), b = ga ? b.detach() : Tensor(),
                                a_shape = a.shape(), b_shape = b.shape(), ga, gb](const Tensor& g) {
      return std::vector<Tensor>{ga ? sum_to(mul(g, b), a_shape) : Tensor(),
                                 gb ? sum_to(mul(g, a), b_shape) : Tensor()};
    });
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(kernels::BinaryOp::Div, "div", a, b);
  if (needs_grad({&a, &b})) {
    const bool gb = b.requires_grad();
    record(out, "div", {a, b}, [a = a.detach(), b = b.detach(), gb](const Tensor& g) {
      Tensor ga = sum_to(div(g, b), a.shape());
      // d(a/b)/db = -a / b^2
      Tensor gbv = gb ? sum_to(neg(div(mul(g, a), mul(b, b))), b.shape()) : Tensor();
      return std::vector<Tensor>{ga, gbv};
    });
  }
  return out;
}

Tensor neg(const Tensor& x) {
  check_floating("neg", x);
  Tensor out = unary_scalar(kernels::UnaryOp::Neg, x, 0);
  if (needs_grad({&x}))
    record(out, "neg", {x}, [](const Tensor& g) { return std::vector<Tensor>{neg(g)}; });
  return out;
}

Tensor add_scalar(const Tensor& x, double s) {
  check_floating("add_scalar", x);
  Tensor out = unary_scalar(kernels::UnaryOp::AddScalar, x, s);
  if (needs_grad({&x}))
    record(out, "add_scalar", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor mul_scalar(const Tensor& x, double s) {
  check_floating("mul_scalar", x);
  Tensor out = unary_scalar(kernels::UnaryOp::MulScalar, x, s);
  if (needs_grad({&x}))
    record(out, "mul_scalar", {x},
           [s](const Tensor& g) { return std::vector<Tensor>{mul_scalar(g, s)}; });
  return out;
}

}  // namespace shrink
