// Max / average pooling with stride and padding, and adaptive average pooling, over NCHW
// planes (kernels/kernel_list.h pool2d, adaptive_avg_pool2d and their backwards; the CPU twin
// is kernels/cpu/pool.cpp, the index formulas and the max rule are kernels/formulas/pool.h).
//
// Forward passes give each output element to one thread, which visits its window in
// row-major order exactly as the CPU does, so max pooling picks the same element (first
// maximum on ties, NaN wins) and average pooling sums in the same order. Backward passes are
// gathers, one thread per input element summing the outputs whose windows contain it, in the
// order the CPU's scatter adds them: no atomics, the same bits every run, and the CPU's bits
// (tests/test_pool_formulas.cpp checks the per-element functions against the CPU kernel).
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/formulas/pool.h"

namespace shrink::kernels::cuda {

namespace {

// One thread per output element (grid-stride, 64-bit indices).
template <class T>
__global__ void max_pool_kernel(Pool2dShape s, std::int64_t out_h, std::int64_t out_w,
                                std::int64_t total, const T* x, T* y, std::int64_t* argmax) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t ow = e % out_w, oh = e / out_w % out_h, p = e / (out_w * out_h);
    formulas::max_pool_at(s, oh, ow, x + p * s.h * s.w, y[e], argmax[e]);
  }
}

template <class T>
__global__ void avg_pool_kernel(Pool2dShape s, std::int64_t out_h, std::int64_t out_w,
                                std::int64_t total, const T* x, T* y) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t ow = e % out_w, oh = e / out_w % out_h, p = e / (out_w * out_h);
    y[e] = formulas::avg_pool_at(s, oh, ow, x + p * s.h * s.w);
  }
}

// One thread per input element: a gather over the outputs whose windows contain it.
template <class T>
__global__ void max_pool_backward_kernel(Pool2dShape s, std::int64_t out_h, std::int64_t out_w,
                                         std::int64_t total, const T* dy,
                                         const std::int64_t* argmax, T* dx) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t q = e % s.w, r = e / s.w % s.h, p = e / (s.w * s.h);
    const std::int64_t plane = p * out_h * out_w;
    dx[e] = formulas::max_pool_backward_at(s, out_h, out_w, r, q, dy + plane, argmax + plane);
  }
}

template <class T>
__global__ void avg_pool_backward_kernel(Pool2dShape s, std::int64_t out_h, std::int64_t out_w,
                                         std::int64_t total, const T* dy, T* dx) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t q = e % s.w, r = e / s.w % s.h, p = e / (s.w * s.h);
    dx[e] = formulas::avg_pool_backward_at(s, out_h, out_w, r, q, dy + p * out_h * out_w);
  }
}

template <class T>
__global__ void adaptive_kernel(std::int64_t h, std::int64_t w, std::int64_t out_h,
                                std::int64_t out_w, std::int64_t total, const T* x, T* y) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t ow = e % out_w, oh = e / out_w % out_h, p = e / (out_w * out_h);
    y[e] = formulas::adaptive_avg_at(h, w, out_h, out_w, oh, ow, x + p * h * w);
  }
}

template <class T>
__global__ void adaptive_backward_kernel(std::int64_t h, std::int64_t w, std::int64_t out_h,
                                         std::int64_t out_w, std::int64_t total, const T* dy,
                                         T* dx) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t q = e % w, r = e / w % h, p = e / (w * h);
    dx[e] = formulas::adaptive_avg_backward_at(h, w, out_h, out_w, r, q, dy + p * out_h * out_w);
  }
}

}  // namespace

void CudaBackend::pool2d(PoolOp op, DType t, const Pool2dShape& s, const void* x, void* y,
                         std::int64_t* argmax) {
  if (op == PoolOp::Max && argmax == nullptr)
    throw Unsupported("pool2d: max pooling needs an argmax buffer");
  const std::int64_t total = s.n * s.c * s.out_h() * s.out_w();
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    if (total <= 0) return;
    const T* src = static_cast<const T*>(x);
    T* dst = static_cast<T*>(y);
    if (op == PoolOp::Max)
      max_pool_kernel<T><<<blocks_for(total), kThreadsPerBlock, 0, stream()>>>(
          s, s.out_h(), s.out_w(), total, src, dst, argmax);
    else
      avg_pool_kernel<T><<<blocks_for(total), kThreadsPerBlock, 0, stream()>>>(
          s, s.out_h(), s.out_w(), total, src, dst);
  }, "pool2d");
  check_launch("pool2d");
}

void CudaBackend::pool2d_backward(PoolOp op, DType t, const Pool2dShape& s, const void* dy,
                                  const std::int64_t* argmax, void* dx) {
  if (op == PoolOp::Max && argmax == nullptr)
    throw Unsupported("pool2d_backward: max pooling needs the forward's argmax");
  const std::int64_t total = s.n * s.c * s.h * s.w;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    if (total <= 0) return;
    const T* g = static_cast<const T*>(dy);
    T* out = static_cast<T*>(dx);
    if (op == PoolOp::Max)
      max_pool_backward_kernel<T><<<blocks_for(total), kThreadsPerBlock, 0, stream()>>>(
          s, s.out_h(), s.out_w(), total, g, argmax, out);
    else
      avg_pool_backward_kernel<T><<<blocks_for(total), kThreadsPerBlock, 0, stream()>>>(
          s, s.out_h(), s.out_w(), total, g, out);
  }, "pool2d_backward");
  check_launch("pool2d_backward");
}

void CudaBackend::adaptive_avg_pool2d(DType t, std::int64_t planes, std::int64_t h,
                                      std::int64_t w, std::int64_t out_h, std::int64_t out_w,
                                      const void* x, void* y) {
  const std::int64_t total = planes * out_h * out_w;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    if (total <= 0) return;
    adaptive_kernel<T><<<blocks_for(total), kThreadsPerBlock, 0, stream()>>>(
        h, w, out_h, out_w, total, static_cast<const T*>(x), static_cast<T*>(y));
  }, "adaptive_avg_pool2d");
  check_launch("adaptive_avg_pool2d");
}

void CudaBackend::adaptive_avg_pool2d_backward(DType t, std::int64_t planes, std::int64_t h,
                                               std::int64_t w, std::int64_t out_h,
                                               std::int64_t out_w, const void* dy, void* dx) {
  const std::int64_t total = planes * h * w;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    if (total <= 0) return;
    adaptive_backward_kernel<T><<<blocks_for(total), kThreadsPerBlock, 0, stream()>>>(
        h, w, out_h, out_w, total, static_cast<const T*>(dy), static_cast<T*>(dx));
  }, "adaptive_avg_pool2d_backward");
  check_launch("adaptive_avg_pool2d_backward");
}

}  // namespace shrink::kernels::cuda
