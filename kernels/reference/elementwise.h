// Reference elementwise kernels: the oracle the tests compare kernels/cpu and kernels/cuda
// against. Plain loops in double precision, written from the textbook formulas and never
// calling the optimised kernels, so a shared mistake cannot hide. Header-only: nothing here
// is linked into shrink_core.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/backend.h"

namespace shrink::kernels::reference {

inline double binary_value(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::AddRelu: return a + b > 0 ? a + b : 0;
  }
  return NAN;
}

// out (contiguous, s.shape) = a[...] op b[...], operand offsets from s.stride_a / s.stride_b
// (elements, 0 along broadcast axes). a, b: as many elements as the strides reach.
inline void binary(BinaryOp op, const BroadcastShape& s, const double* a, const double* b,
                   double* out) {
  std::int64_t n = 1;
  for (int d = 0; d < s.ndim; ++d) n *= s.shape[d];
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t rem = i, offset_a = 0, offset_b = 0;
    for (int d = s.ndim - 1; d >= 0; --d) {  // unravel i, last axis fastest
      const std::int64_t coord = rem % s.shape[d];
      rem /= s.shape[d];
      offset_a += coord * s.stride_a[d];
      offset_b += coord * s.stride_b[d];
    }
    out[i] = binary_value(op, a[offset_a], b[offset_b]);
  }
}

// NumPy broadcasting over plain shapes, any rank: out (out_shape) = a (a_shape) op b (b_shape),
// shapes right-aligned, size-1 axes repeated.
inline void binary_broadcast(BinaryOp op, int out_ndim, const std::int64_t* out_shape,
                             int a_ndim, const std::int64_t* a_shape, const double* a,
                             int b_ndim, const std::int64_t* b_shape, const double* b,
                             double* out) {
  std::int64_t n = 1;
  for (int d = 0; d < out_ndim; ++d) n *= out_shape[d];
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t rem = i, offset_a = 0, offset_b = 0, stride_a = 1, stride_b = 1;
    for (int d = out_ndim - 1; d >= 0; --d) {  // unravel i, last axis fastest
      const std::int64_t coord = rem % out_shape[d];
      rem /= out_shape[d];
      const int da = d - (out_ndim - a_ndim), db = d - (out_ndim - b_ndim);
      if (da >= 0) {
        if (a_shape[da] != 1) offset_a += coord * stride_a;
        stride_a *= a_shape[da];
      }
      if (db >= 0) {
        if (b_shape[db] != 1) offset_b += coord * stride_b;
        stride_b *= b_shape[db];
      }
    }
    out[i] = binary_value(op, a[offset_a], b[offset_b]);
  }
}

// y = f(x, alpha), one element.
inline double unary_value(UnaryOp op, double x, double alpha) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Relu: return x > 0 ? x : 0.0;
    case UnaryOp::Relu6: return x <= 0 ? 0.0 : x >= 6 ? 6.0 : x;
    case UnaryOp::Gelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));  // x * Phi(x)
    case UnaryOp::GeluTanh:
      return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return 1 / (1 + std::exp(-x));
    case UnaryOp::PowScalar: return std::pow(x, alpha);
    case UnaryOp::AddScalar: return x + alpha;
    case UnaryOp::MulScalar: return x * alpha;
    case UnaryOp::Abs: return std::fabs(x);
    case UnaryOp::Sign: return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
    case UnaryOp::Square: return x * x;
  }
  return NAN;
}

// f'(x, alpha), one element. At kinks (relu at 0, relu6 at 0 and 6, abs at 0) the derivative
// is 0, as PyTorch's.
inline double unary_derivative(UnaryOp op, double x, double alpha) {
  constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1 / sqrt(2 pi)
  switch (op) {
    case UnaryOp::Neg: return -1.0;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return 1 / x;
    case UnaryOp::Sqrt: return 0.5 / std::sqrt(x);
    case UnaryOp::Relu: return x > 0 ? 1.0 : 0.0;
    case UnaryOp::Relu6: return x > 0 && x < 6 ? 1.0 : 0.0;
    case UnaryOp::Gelu:  // Phi(x) + x phi(x)
      return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x);
    case UnaryOp::GeluTanh: {  // 0.5 (1 + t) + 0.5 x (1 - t^2) u', u = sqrt(2/pi)(x + 0.044715 x^3)
      const double k = std::sqrt(2 / M_PI), t = std::tanh(k * (x + 0.044715 * x * x * x));
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
    }
    case UnaryOp::Tanh: return 1 - std::tanh(x) * std::tanh(x);
    case UnaryOp::Sigmoid: {
      const double s = 1 / (1 + std::exp(-x));
      return s * (1 - s);
    }
    case UnaryOp::PowScalar: return alpha * std::pow(x, alpha - 1);
    case UnaryOp::AddScalar: return 1.0;
    case UnaryOp::MulScalar: return alpha;
    case UnaryOp::Abs: return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
    case UnaryOp::Sign: return 0.0;
    case UnaryOp::Square: return 2 * x;
  }
  return NAN;
}

// x, y: (n)
inline void unary(UnaryOp op, std::int64_t n, double alpha, const double* x, double* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = unary_value(op, x[i], alpha);
}

// x, dy, dx: (n); dx = dy * f'(x)
inline void unary_backward(UnaryOp op, std::int64_t n, double alpha, const double* x,
                           const double* dy, double* dx) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * unary_derivative(op, x[i], alpha);
}

}  // namespace shrink::kernels::reference
