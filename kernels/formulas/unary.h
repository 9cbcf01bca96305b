// The pointwise unary ops: value y = f(x, alpha) and derivative f'(x), written once for the
// CPU loops (kernels/cpu/elementwise.cpp) and the CUDA kernels (kernels/cuda/elementwise.cu).
// `Op` is a template parameter so each op's loop is instantiated on its own: the switch is
// resolved at compile time and the CPU loop vectorises.
#pragma once
#include "kernels/formulas/hd.h"
#include "kernels/formulas/math.h"
#include "kernels/kernel_types.h"

namespace shrink::kernels::formulas {

// Phi(x), the standard normal CDF, for the exact (erf) GELU.
template <class T>
SHRINK_HD T gelu_cdf(T x) {
  return T(0.5) * (T(1) + m_erf(x * T(0.70710678118654752440)));
}

// tanh(sqrt(2 / pi) (x + 0.044715 x^3)) and the derivative of its argument, for the tanh GELU
// 0.5 x (1 + t): its derivative is 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2 / pi) (1 + 3 0.044715 x^2).
template <class T>
SHRINK_HD T gelu_tanh_t(T x) {
  return m_tanh(T(0.79788456080286535588) * (x + T(0.044715) * x * x * x));
}
template <class T>
SHRINK_HD T gelu_tanh_derivative(T x) {
  const T t = gelu_tanh_t(x);
  return T(0.5) * (T(1) + t) +
         T(0.5) * x * (T(1) - t * t) * T(0.79788456080286535588) * (T(1) + T(3 * 0.044715) * x * x);
}

template <UnaryOp Op, class T>
SHRINK_HD T unary_value(T x, T alpha) {
  switch (Op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return m_exp(x);
    case UnaryOp::Log: return m_log(x);
    case UnaryOp::Sqrt: return m_sqrt(x);
    case UnaryOp::Relu: return x > T(0) ? x : T(0);
    case UnaryOp::Relu6: return x < T(0) ? T(0) : (x > T(6) ? T(6) : x);
    case UnaryOp::Gelu: return x * gelu_cdf(x);
    case UnaryOp::GeluTanh: return T(0.5) * x * (T(1) + gelu_tanh_t(x));
    case UnaryOp::Tanh: return m_tanh(x);
    case UnaryOp::Sigmoid: return T(1) / (T(1) + m_exp(-x));
    case UnaryOp::PowScalar: return m_pow(x, alpha);
    case UnaryOp::AddScalar: return x + alpha;
    case UnaryOp::MulScalar: return x * alpha;
    case UnaryOp::Abs: return m_abs(x);
    case UnaryOp::Sign: return T((x > T(0)) - (x < T(0)));
    case UnaryOp::Square: return x * x;
  }
  return T(0);
}

// Whether f'(x) is computed from y = f(x) rather than from x. No op reads both, so autograd
// keeps only the one it needs alive until backward (core/ops/pointwise.cpp) and hands it to
// the kernel as both x and y.
constexpr bool unary_grad_reads_output(UnaryOp op) {
  return op == UnaryOp::Exp || op == UnaryOp::Sqrt || op == UnaryOp::Relu || op == UnaryOp::Relu6 ||
         op == UnaryOp::Tanh || op == UnaryOp::Sigmoid;
}

// d f(x) / dx, given x and y = f(x).
template <UnaryOp Op, class T>
SHRINK_HD T unary_derivative(T x, T y, T alpha) {
  switch (Op) {
    case UnaryOp::Neg: return T(-1);
    case UnaryOp::Exp: return y;
    case UnaryOp::Log: return T(1) / x;
    case UnaryOp::Sqrt: return T(0.5) / y;
    case UnaryOp::Relu: return y > T(0) ? T(1) : T(0);              // y > 0 exactly where x > 0
    case UnaryOp::Relu6: return (y > T(0) && y < T(6)) ? T(1) : T(0);  // and 0 < y < 6 where 0 < x < 6
    case UnaryOp::Gelu:  // Phi(x) + x * phi(x)
      return gelu_cdf(x) + x * T(0.39894228040143267794) * m_exp(T(-0.5) * x * x);
    case UnaryOp::GeluTanh: return gelu_tanh_derivative(x);
    case UnaryOp::Tanh: return T(1) - y * y;
    case UnaryOp::Sigmoid: return y * (T(1) - y);
    case UnaryOp::PowScalar: return alpha * m_pow(x, alpha - T(1));
    case UnaryOp::AddScalar: return T(1);
    case UnaryOp::MulScalar: return alpha;
    case UnaryOp::Abs: return T((x > T(0)) - (x < T(0)));
    case UnaryOp::Sign: return T(0);
    case UnaryOp::Square: return T(2) * x;
  }
  return T(0);
}

// dx = dy * f'(x). ReLU and ReLU6 use a select, not the product: GCC compiles the product
// form to a branch per element, which mispredicts on ReLU's random sign pattern (10% of an
// ffn-10000 step), and the select passes inf/NaN in dy through unchanged where the unit is
// on (dy * 0 would turn them into NaN where it is off), identically on both backends.
template <UnaryOp Op, class T>
SHRINK_HD T unary_grad(T x, T y, T dy, T alpha) {
  if constexpr (Op == UnaryOp::Relu || Op == UnaryOp::Relu6) {
    const bool pass = Op == UnaryOp::Relu ? y > T(0) : (y > T(0)) & (y < T(6));
    return pass ? dy : T(0);
  } else {
    return dy * unary_derivative<Op>(x, y, alpha);
  }
}

}  // namespace shrink::kernels::formulas
