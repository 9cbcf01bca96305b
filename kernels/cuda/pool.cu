// Max / average pooling with stride and padding, and adaptive average pooling, over NCHW
// planes (kernels/kernel_list.h pool2d, adaptive_avg_pool2d and their backwards; the CPU twin
// is kernels/cpu/pool.cpp, the index formulas and the max rule are kernels/formulas/pool.h).
//
// Forward passes give each output element to one thread, which visits its window in
// row-major order exactly as the CPU does, so max pooling picks the same element (first
// maximum on ties, NaN wins) and average pooling sums in the same order. Backward passes are
// gathers, one thread per input element summing the outputs whose windows contain it, in the
// order the CPU's scatter adds them: no atomics, the same bits every run and, where the
// CPU's additions are in a fixed per-element order, the CPU's bits.
#include <cuda_runtime.h>

#include <cmath>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/formulas/pool.h"

namespace shrink::kernels::cuda {

namespace {

using formulas::adaptive_begin;
using formulas::adaptive_end;

template <class T>
__global__ void max_pool_kernel(Pool2dShape s, std::int64_t out_h, std::int64_t out_w,
                                std::int64_t total, const T* x, T* y, std::int64_t* argmax) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t ow = e % out_w, oh = e / out_w % out_h, p = e / (out_w * out_h);
    const T* plane = x + p * s.h * s.w;
    const std::int64_t row0 = oh * s.stride_h - s.pad_h, col0 = ow * s.stride_w - s.pad_w;
    // From -inf, with the window's first in-bounds position as argmax (kept when every value
    // is -inf), as the CPU kernel.
    T best = -static_cast<T>(INFINITY);
    std::int64_t best_at = (row0 < 0 ? 0 : row0) * s.w + (col0 < 0 ? 0 : col0);
    for (std::int64_t i = 0; i < s.kh; ++i) {
      const std::int64_t r = row0 + i;
      if (r < 0 || r >= s.h) continue;
      for (std::int64_t j = 0; j < s.kw; ++j) {
        const std::int64_t q = col0 + j;
        if (q < 0 || q >= s.w) continue;
        const T v = plane[r * s.w + q];
        if (formulas::max_pool_takes(v, best)) {
          best = v;
          best_at = r * s.w + q;
        }
      }
    }
    y[e] = best;
    argmax[e] = best_at;
  }
}

// Sum of the window's in-bounds values in row-major order, over kh kw (padding counted).
template <class T>
__global__ void avg_pool_kernel(Pool2dShape s, std::int64_t out_h, std::int64_t out_w,
                                std::int64_t total, const T* x, T* y) {
  const T area = static_cast<T>(s.kh * s.kw);
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t ow = e % out_w, oh = e / out_w % out_h, p = e / (out_w * out_h);
    const T* plane = x + p * s.h * s.w;
    const std::int64_t row0 = oh * s.stride_h - s.pad_h, col0 = ow * s.stride_w - s.pad_w;
    T sum = 0;
    for (std::int64_t i = 0; i < s.kh; ++i) {
      const std::int64_t r = row0 + i;
      if (r < 0 || r >= s.h) continue;
      for (std::int64_t j = 0; j < s.kw; ++j) {
        const std::int64_t q = col0 + j;
        if (q < 0 || q >= s.w) continue;
        sum += plane[r * s.w + q];
      }
    }
    y[e] = sum / area;
  }
}

// dx[r, q] = sum of dy over the outputs whose argmax is (r, q); only outputs whose window
// contains (r, q) can name it. Added in output order, as the CPU's scatter.
template <class T>
__global__ void max_pool_backward_kernel(Pool2dShape s, std::int64_t out_h, std::int64_t out_w,
                                         std::int64_t total, const T* dy,
                                         const std::int64_t* argmax, T* dx) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t q = e % s.w, r = e / s.w % s.h, p = e / (s.w * s.h);
    const auto rows = formulas::windows_containing(r, s.kh, s.stride_h, s.pad_h, out_h);
    const auto cols = formulas::windows_containing(q, s.kw, s.stride_w, s.pad_w, out_w);
    const std::int64_t here = r * s.w + q, base = p * out_h * out_w;
    T sum = 0;
    for (std::int64_t oh = rows.first; oh < rows.end; ++oh)
      for (std::int64_t ow = cols.first; ow < cols.end; ++ow) {
        const std::int64_t o = base + oh * out_w + ow;
        if (argmax[o] == here) sum += dy[o];
      }
    dx[e] = sum;
  }
}

// dx[r, q] = sum of dy / (kh kw) over the windows containing (r, q). The CPU's scatter adds
// them row of outputs by row of outputs and, within one, by window column j ascending, that
// is output column descending: the same order here.
template <class T>
__global__ void avg_pool_backward_kernel(Pool2dShape s, std::int64_t out_h, std::int64_t out_w,
                                         std::int64_t total, const T* dy, T* dx) {
  const T area = static_cast<T>(s.kh * s.kw);
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t q = e % s.w, r = e / s.w % s.h, p = e / (s.w * s.h);
    const auto rows = formulas::windows_containing(r, s.kh, s.stride_h, s.pad_h, out_h);
    const auto cols = formulas::windows_containing(q, s.kw, s.stride_w, s.pad_w, out_w);
    const T* g = dy + p * out_h * out_w;
    T sum = 0;
    for (std::int64_t oh = rows.first; oh < rows.end; ++oh)
      for (std::int64_t ow = cols.end - 1; ow >= cols.first; --ow)
        sum += g[oh * out_w + ow] / area;
    dx[e] = sum;
  }
}

template <class T>
__global__ void adaptive_kernel(std::int64_t h, std::int64_t w, std::int64_t out_h,
                                std::int64_t out_w, std::int64_t total, const T* x, T* y) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t ow = e % out_w, oh = e / out_w % out_h, p = e / (out_w * out_h);
    const std::int64_t r0 = adaptive_begin(oh, h, out_h), r1 = adaptive_end(oh, h, out_h);
    const std::int64_t q0 = adaptive_begin(ow, w, out_w), q1 = adaptive_end(ow, w, out_w);
    const T* plane = x + p * h * w;
    T sum = 0;
    for (std::int64_t r = r0; r < r1; ++r)
      for (std::int64_t q = q0; q < q1; ++q) sum += plane[r * w + q];
    y[e] = sum / static_cast<T>((r1 - r0) * (q1 - q0));
  }
}

// dx[r, q] = sum of dy / window size over the outputs whose windows contain (r, q), in output
// order as the CPU's scatter.
template <class T>
__global__ void adaptive_backward_kernel(std::int64_t h, std::int64_t w, std::int64_t out_h,
                                         std::int64_t out_w, std::int64_t total, const T* dy, T* dx) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t q = e % w, r = e / w % h, p = e / (w * h);
    const std::int64_t oh0 = formulas::adaptive_first_output(r, h, out_h);
    const std::int64_t oh1 = formulas::adaptive_end_output(r, h, out_h);
    const std::int64_t ow0 = formulas::adaptive_first_output(q, w, out_w);
    const std::int64_t ow1 = formulas::adaptive_end_output(q, w, out_w);
    const T* g = dy + p * out_h * out_w;
    T sum = 0;
    for (std::int64_t oh = oh0; oh < oh1; ++oh) {
      const std::int64_t rows = adaptive_end(oh, h, out_h) - adaptive_begin(oh, h, out_h);
      for (std::int64_t ow = ow0; ow < ow1; ++ow) {
        const std::int64_t cols = adaptive_end(ow, w, out_w) - adaptive_begin(ow, w, out_w);
        sum += g[oh * out_w + ow] / static_cast<T>(rows * cols);
      }
    }
    dx[e] = sum;
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
