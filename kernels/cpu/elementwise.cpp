// Elementwise kernels: broadcasting binary ops and the pointwise unary family with their
// derivatives. Loops are written so GCC vectorises them (-O3 -mavx2 -mfma); large ones
// are split across threads with OpenMP.
#include <cmath>

#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels::cpu {

namespace {

template <class T>
inline T apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
  }
  return T(0);
}

// One contiguous output row of length n; operands step by sa, sb (0 = broadcast, 1 = dense).
template <class T, BinaryOp Op>
inline void binary_row(std::int64_t n, const T* a, std::int64_t sa, const T* b, std::int64_t sb,
                       T* out) {
  if (sa == 1 && sb == 1) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) out[i] = apply(Op, a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const T bv = *b;
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) out[i] = apply(Op, a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const T av = *a;
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) out[i] = apply(Op, av, b[i]);
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = apply(Op, a[i * sa], b[i * sb]);
  }
}

template <class T, BinaryOp Op>
void binary_typed(const BroadcastShape& s, const T* a, const T* b, T* out) {
  const int last = s.ndim - 1;
  const std::int64_t row = s.ndim ? s.shape[last] : 1;
  const std::int64_t sa = s.ndim ? s.stride_a[last] : 0, sb = s.ndim ? s.stride_b[last] : 0;
  std::int64_t rows = 1;
  for (int d = 0; d < last; ++d) rows *= s.shape[d];
#pragma omp parallel for schedule(static) if (rows * row > kParallelGrain && rows > 1)
  for (std::int64_t r = 0; r < rows; ++r) {
    // Decompose the row index into the outer coordinates to find each operand's offset.
    std::int64_t rem = r, off_a = 0, off_b = 0;
    for (int d = last - 1; d >= 0; --d) {
      const std::int64_t coord = rem % s.shape[d];
      rem /= s.shape[d];
      off_a += coord * s.stride_a[d];
      off_b += coord * s.stride_b[d];
    }
    binary_row<T, Op>(row, a + off_a, sa, b + off_b, sb, out + r * row);
  }
}

template <class T>
inline T gelu_cdf(T x) { return T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440))); }

template <class T>
inline T unary_value(UnaryOp op, T x, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Relu: return x > T(0) ? x : T(0);
    case UnaryOp::Relu6: return x < T(0) ? T(0) : (x > T(6) ? T(6) : x);
    case UnaryOp::Gelu: return x * gelu_cdf(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return T(1) / (T(1) + std::exp(-x));
    case UnaryOp::PowScalar: return std::pow(x, alpha);
    case UnaryOp::AddScalar: return x + alpha;
    case UnaryOp::MulScalar: return x * alpha;
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Sign: return T((x > T(0)) - (x < T(0)));
    case UnaryOp::Square: return x * x;
  }
  return T(0);
}

// d f(x) / dx, given x and y = f(x).
template <class T>
inline T unary_derivative(UnaryOp op, T x, T y, T alpha) {
  switch (op) {
    case UnaryOp::Neg: return T(-1);
    case UnaryOp::Exp: return y;
    case UnaryOp::Log: return T(1) / x;
    case UnaryOp::Sqrt: return T(0.5) / y;
    case UnaryOp::Relu: return x > T(0) ? T(1) : T(0);
    case UnaryOp::Relu6: return (x > T(0) && x < T(6)) ? T(1) : T(0);
    case UnaryOp::Gelu:  // Phi(x) + x * phi(x)
      return gelu_cdf(x) + x * T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
    case UnaryOp::Tanh: return T(1) - y * y;
    case UnaryOp::Sigmoid: return y * (T(1) - y);
    case UnaryOp::PowScalar: return alpha * std::pow(x, alpha - T(1));
    case UnaryOp::AddScalar: return T(1);
    case UnaryOp::MulScalar: return alpha;
    case UnaryOp::Abs: return T((x > T(0)) - (x < T(0)));
    case UnaryOp::Sign: return T(0);
    case UnaryOp::Square: return T(2) * x;
  }
  return T(0);
}

// Instantiates the loop per op so the switch is resolved outside it and the loop vectorises.
template <class T, UnaryOp Op>
void unary_loop(std::int64_t n, T alpha, const T* x, T* y) {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (std::int64_t i = 0; i < n; ++i) y[i] = unary_value(Op, x[i], alpha);
}

template <class T, UnaryOp Op>
void unary_backward_loop(std::int64_t n, T alpha, const T* x, const T* y, const T* dy, T* dx) {
  if constexpr (Op == UnaryOp::Relu || Op == UnaryOp::Relu6) {
    // A select, not dy * f'(x): GCC compiles the product form to a branch per element,
    // which mispredicts on ReLU's random sign pattern (10% of an ffn-10000 step).
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) {
      const bool pass = Op == UnaryOp::Relu ? x[i] > T(0) : (x[i] > T(0)) & (x[i] < T(6));
      dx[i] = pass ? dy[i] : T(0);
    }
  } else {
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i)
      dx[i] = dy[i] * unary_derivative(Op, x[i], y[i], alpha);
  }
}

#define SHRINK_UNARY_CASES(F)                                                            \
  F(Neg) F(Exp) F(Log) F(Sqrt) F(Relu) F(Relu6) F(Gelu) F(Tanh) F(Sigmoid) F(PowScalar) \
  F(AddScalar) F(MulScalar) F(Abs) F(Sign) F(Square)

}  // namespace

void CpuBackend::binary(BinaryOp op, DType t, const BroadcastShape& s, const void* a,
                        const void* b, void* out) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    switch (op) {
      case BinaryOp::Add: binary_typed<T, BinaryOp::Add>(s, pa, pb, po); break;
      case BinaryOp::Sub: binary_typed<T, BinaryOp::Sub>(s, pa, pb, po); break;
      case BinaryOp::Mul: binary_typed<T, BinaryOp::Mul>(s, pa, pb, po); break;
      case BinaryOp::Div: binary_typed<T, BinaryOp::Div>(s, pa, pb, po); break;
    }
  });
}

void CpuBackend::unary(UnaryOp op, DType t, std::int64_t n, double alpha, const void* x,
                       void* y) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    switch (op) {
#define SHRINK_CASE(name) \
  case UnaryOp::name: unary_loop<T, UnaryOp::name>(n, T(alpha), px, py); break;
      SHRINK_UNARY_CASES(SHRINK_CASE)
#undef SHRINK_CASE
    }
  });
}

void CpuBackend::unary_backward(UnaryOp op, DType t, std::int64_t n, double alpha, const void* x,
                                const void* y, const void* dy, void* dx) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* px = static_cast<const T*>(x);
    const T* py = static_cast<const T*>(y);
    const T* pdy = static_cast<const T*>(dy);
    T* pdx = static_cast<T*>(dx);
    switch (op) {
#define SHRINK_CASE(name)                                                            \
  case UnaryOp::name:                                                                \
    unary_backward_loop<T, UnaryOp::name>(n, T(alpha), px, py, pdy, pdx);            \
    break;
      SHRINK_UNARY_CASES(SHRINK_CASE)
#undef SHRINK_CASE
    }
  });
}

}  // namespace shrink::kernels::cpu
