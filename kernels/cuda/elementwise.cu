// Elementwise kernels: fill, arange, cast, broadcasting binary ops and the pointwise unary
// family with its derivatives. The per-element formulas are kernels/formulas/, the same
// code the CPU loops run, so results differ from the CPU only by the math library (erf,
// exp, tanh, pow).
#include <cstdint>

#include "kernels/cuda/launch.cuh"
#include "kernels/formulas/binary.h"
#include "kernels/formulas/unary.h"

namespace shrink::kernels::cuda {

namespace {

// ---- fill / arange / cast ----

template <class T>
__global__ void fill_kernel(std::int64_t n, T value, T* out) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) out[i] = value;
}

template <class T>
__global__ void arange_kernel(std::int64_t n, T* out) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) out[i] = static_cast<T>(i);
}

template <class S, class D>
__global__ void cast_kernel(std::int64_t n, const S* in, D* out) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) out[i] = static_cast<D>(in[i]);
}

// ---- binary ----

template <BinaryOp Op, class T>
__device__ __forceinline__ T apply(T a, T b) {
  return formulas::binary_value<Op>(a, b);
}

// 16-byte vectors: one load instruction moves four floats or two doubles.
template <class T> struct Vec16;
template <> struct Vec16<float> {
  using type = float4;
  static constexpr int width = 4;
};
template <> struct Vec16<double> {
  using type = double2;
  static constexpr int width = 2;
};

template <BinaryOp Op>
__device__ __forceinline__ float4 apply_vec(float4 a, float4 b) {
  return make_float4(apply<Op>(a.x, b.x), apply<Op>(a.y, b.y), apply<Op>(a.z, b.z),
                     apply<Op>(a.w, b.w));
}
template <BinaryOp Op>
__device__ __forceinline__ double2 apply_vec(double2 a, double2 b) {
  return make_double2(apply<Op>(a.x, b.x), apply<Op>(a.y, b.y));
}

// Both operands dense with the output's shape. The first n_vec vectors go through 16-byte
// loads (n_vec = 0 when a pointer is misaligned); the remaining tail element by element.
template <BinaryOp Op, class T>
__global__ void binary_dense_kernel(std::int64_t n, std::int64_t n_vec, const T* a, const T* b,
                                    T* out) {
  using V = typename Vec16<T>::type;
  const V* va = reinterpret_cast<const V*>(a);
  const V* vb = reinterpret_cast<const V*>(b);
  V* vo = reinterpret_cast<V*>(out);
  for (std::int64_t v = grid_start(); v < n_vec; v += grid_step()) vo[v] = apply_vec<Op>(va[v], vb[v]);
  for (std::int64_t i = n_vec * Vec16<T>::width + grid_start(); i < n; i += grid_step())
    out[i] = apply<Op>(a[i], b[i]);
}

// General broadcast: each output index is decomposed into coordinates (last axis fastest),
// which give each operand's offset through its strides (0 along broadcast axes).
template <BinaryOp Op, class T>
__global__ void binary_strided_kernel(BroadcastShape s, std::int64_t n, const T* a, const T* b,
                                      T* out) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) {
    std::int64_t rem = i, off_a = 0, off_b = 0;
    for (int d = s.ndim - 1; d >= 0; --d) {
      const std::int64_t coord = rem % s.shape[d];
      rem /= s.shape[d];
      off_a += coord * s.stride_a[d];
      off_b += coord * s.stride_b[d];
    }
    out[i] = apply<Op>(a[off_a], b[off_b]);
  }
}

// True when both operands are laid out exactly like the contiguous output.
bool both_dense(const BroadcastShape& s) {
  std::int64_t stride = 1;
  for (int d = s.ndim - 1; d >= 0; --d) {
    if (s.shape[d] != 1 && (s.stride_a[d] != stride || s.stride_b[d] != stride)) return false;
    stride *= s.shape[d];
  }
  return true;
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

template <BinaryOp Op, class T>
void binary_typed(const BroadcastShape& s, const T* a, const T* b, T* out) {
  std::int64_t n = 1;
  for (int d = 0; d < s.ndim; ++d) n *= s.shape[d];
  if (n == 0) return;
  if (both_dense(s)) {
    constexpr int w = Vec16<T>::width;
    const std::int64_t n_vec = aligned16(a) && aligned16(b) && aligned16(out) ? n / w : 0;
    binary_dense_kernel<Op, T><<<blocks_for(n, n_vec ? w : 1), kThreadsPerBlock, 0, stream()>>>(
        n, n_vec, a, b, out);
  } else {
    binary_strided_kernel<Op, T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(s, n, a, b, out);
  }
  check_launch("binary");
}

// ---- unary ----

template <UnaryOp Op, class T>
__global__ void unary_kernel(std::int64_t n, T alpha, const T* x, T* y) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step())
    y[i] = formulas::unary_value<Op>(x[i], alpha);
}

template <UnaryOp Op, class T>
__global__ void unary_backward_kernel(std::int64_t n, T alpha, const T* x, const T* y,
                                      const T* dy, T* dx) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step())
    dx[i] = formulas::unary_grad<Op>(x[i], y[i], dy[i], alpha);
}

}  // namespace

void CudaBackend::fill(DType t, std::int64_t n, double value, void* out) {
  if (n <= 0) return;
  dispatch_all(t, [&](auto zero) {
    using T = decltype(zero);
    fill_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(n, static_cast<T>(value),
                                                                      static_cast<T*>(out));
  });
  check_launch("fill");
}

void CudaBackend::arange(DType t, std::int64_t n, void* out) {
  if (n <= 0) return;
  dispatch_all(t, [&](auto zero) {
    using T = decltype(zero);
    arange_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(n, static_cast<T*>(out));
  });
  check_launch("arange");
}

void CudaBackend::cast(DType from, DType to, std::int64_t n, const void* in, void* out) {
  if (n <= 0) return;
  dispatch_all(from, [&](auto src_zero) {
    using S = decltype(src_zero);
    dispatch_all(to, [&](auto dst_zero) {
      using D = decltype(dst_zero);
      cast_kernel<S, D><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
          n, static_cast<const S*>(in), static_cast<D*>(out));
    });
  });
  check_launch("cast");
}

void CudaBackend::binary(BinaryOp op, DType t, const BroadcastShape& s, const void* a,
                         const void* b, void* out) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    switch (op) {
#define SHRINK_CASE(name) \
  case BinaryOp::name: binary_typed<BinaryOp::name>(s, pa, pb, po); break;
      SHRINK_BINARY_OPS(SHRINK_CASE)
#undef SHRINK_CASE
    }
  });
}

void CudaBackend::unary(UnaryOp op, DType t, std::int64_t n, double alpha, const void* x,
                        void* y) {
  if (n <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    const unsigned blocks = blocks_for(n);
    switch (op) {
#define SHRINK_CASE(name)                                                                    \
  case UnaryOp::name:                                                                        \
    unary_kernel<UnaryOp::name, T><<<blocks, kThreadsPerBlock, 0, stream()>>>(n, T(alpha), px, py); \
    break;
      SHRINK_UNARY_OPS(SHRINK_CASE)
#undef SHRINK_CASE
    }
  });
  check_launch("unary");
}

void CudaBackend::unary_backward(UnaryOp op, DType t, std::int64_t n, double alpha, const void* x,
                                 const void* y, const void* dy, void* dx) {
  if (n <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* px = static_cast<const T*>(x);
    const T* py = static_cast<const T*>(y);
    const T* pdy = static_cast<const T*>(dy);
    T* pdx = static_cast<T*>(dx);
    const unsigned blocks = blocks_for(n);
    switch (op) {
#define SHRINK_CASE(name)                                                       \
  case UnaryOp::name:                                                           \
    unary_backward_kernel<UnaryOp::name, T><<<blocks, kThreadsPerBlock, 0, stream()>>>( \
        n, T(alpha), px, py, pdy, pdx);                                         \
    break;
      SHRINK_UNARY_OPS(SHRINK_CASE)
#undef SHRINK_CASE
    }
  });
  check_launch("unary_backward");
}

}  // namespace shrink::kernels::cuda
