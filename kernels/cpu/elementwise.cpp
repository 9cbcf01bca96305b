// Elementwise kernels: broadcasting binary ops and the pointwise unary family with their
// derivatives. The per-element formulas are kernels/formulas/ (shared with CUDA); the loops
// here are instantiated per op so GCC vectorises them (-O3 -mavx2 -mfma); large ones are
// split across threads with OpenMP.
#include <algorithm>
#include <type_traits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/row_pieces.h"
#include "kernels/cpu/vector_gelu.h"
#include "kernels/formulas/binary.h"
#include "kernels/formulas/unary.h"

namespace shrink::kernels::cpu {

namespace {

using formulas::binary_value;
using formulas::unary_grad;
using formulas::unary_value;

// One contiguous output row of length n; operands step by sa, sb (0 = broadcast, 1 = dense).
template <class T, BinaryOp Op>
inline void binary_row(std::int64_t n, const T* a, std::int64_t sa, const T* b, std::int64_t sb,
                       T* out) {
  if (sa == 1 && sb == 1) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) out[i] = binary_value<Op>(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const T bv = *b;
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) out[i] = binary_value<Op>(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const T av = *a;
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) out[i] = binary_value<Op>(av, b[i]);
  } else {
    for (std::int64_t i = 0; i < n; ++i) out[i] = binary_value<Op>(a[i * sa], b[i * sb]);
  }
}

template <class T, BinaryOp Op>
void binary_typed(const BroadcastShape& s, const T* a, const T* b, T* out) {
  const int last = s.ndim - 1;
  const std::int64_t row = s.ndim ? s.shape[last] : 1;
  const std::int64_t sa = s.ndim ? s.stride_a[last] : 0, sb = s.ndim ? s.stride_b[last] : 0;
  std::int64_t rows = 1;
  for (int d = 0; d < last; ++d) rows *= s.shape[d];
  for_each_row_piece(rows, row, [&](std::int64_t r, std::int64_t begin, std::int64_t n) {
    // Decompose the row index into the outer coordinates to find each operand's offset.
    std::int64_t rem = r, off_a = begin * sa, off_b = begin * sb;
    for (int d = last - 1; d >= 0; --d) {
      const std::int64_t coord = rem % s.shape[d];
      rem /= s.shape[d];
      off_a += coord * s.stride_a[d];
      off_b += coord * s.stride_b[d];
    }
    binary_row<T, Op>(n, a + off_a, sa, b + off_b, sb, out + r * row + begin);
  });
}

// Instantiates the loop per op so the switch is resolved outside it and the loop vectorises.
// The exact GELU in float32 has its own AVX2 path (kernels/cpu/vector_gelu.h): libm's erff is
// scalar and was a fifth of a transformer's inference.
template <class T, UnaryOp Op>
void unary_loop(std::int64_t n, T alpha, const T* x, T* y) {
  if constexpr (std::is_same_v<T, float> && Op == UnaryOp::Gelu) {
    for_each_row_piece(1, n, [&](std::int64_t, std::int64_t b, std::int64_t m) { vgelu::gelu(x + b, y + b, m); });
    return;
  }
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (std::int64_t i = 0; i < n; ++i) y[i] = unary_value<Op>(x[i], alpha);
}

// ReLU/ReLU6 go through a select inside unary_grad (see kernels/formulas/unary.h).
template <class T, UnaryOp Op>
void unary_backward_loop(std::int64_t n, T alpha, const T* x, const T* y, const T* dy, T* dx) {
  if constexpr (std::is_same_v<T, float> && Op == UnaryOp::Gelu) {
    for_each_row_piece(1, n, [&](std::int64_t, std::int64_t b, std::int64_t m) {
      vgelu::gelu_backward(x + b, dy + b, dx + b, m);
    });
    return;
  }
#pragma omp parallel for simd schedule(static) if (n > kParallelGrain)
  for (std::int64_t i = 0; i < n; ++i) dx[i] = unary_grad<Op>(x[i], y[i], dy[i], alpha);
}

}  // namespace

void CpuBackend::binary(BinaryOp op, DType t, const BroadcastShape& s, const void* a,
                        const void* b, void* out) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    switch (op) {
#define SHRINK_CASE(name) \
  case BinaryOp::name: binary_typed<T, BinaryOp::name>(s, pa, pb, po); break;
      SHRINK_BINARY_OPS(SHRINK_CASE)
#undef SHRINK_CASE
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
      SHRINK_UNARY_OPS(SHRINK_CASE)
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
      SHRINK_UNARY_OPS(SHRINK_CASE)
#undef SHRINK_CASE
    }
  });
}

}  // namespace shrink::kernels::cpu
