// Max / average pooling with stride and padding, and adaptive average pooling, over NCHW
// planes (kernels/kernel_list.h pool2d, adaptive_avg_pool2d and their backwards). Each plane
// is owned by one thread, so results do not depend on the thread count; within a plane the
// window is swept one (row, column offset) pair at a time across a whole output row, so the
// inner loop runs over contiguous outputs (and, at stride 1, contiguous inputs) and
// vectorises. Visiting the window's pairs in row-major order keeps max pooling's rule: the
// first maximum wins ties, and a NaN beats any number (a later NaN replaces an earlier one,
// as in PyTorch's CPU and CUDA kernels: `val > max || isnan(val)`).
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/formulas/pool.h"

namespace shrink::kernels::cpu {

namespace {

// Outputs [begin, end) of a row whose input column ow * stride + offset lies in [0, w).
struct ColumnRange {
  std::int64_t begin, end;
};
ColumnRange columns(std::int64_t offset, std::int64_t stride, std::int64_t w, std::int64_t out_w) {
  const std::int64_t begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  std::int64_t end = w - 1 - offset >= 0 ? (w - 1 - offset) / stride + 1 : 0;
  if (end > out_w) end = out_w;
  return {begin, end < begin ? begin : end};
}

// Each output starts at -inf with its window's first in-bounds position as argmax (right when
// every value is -inf); a later value replaces it only when strictly larger, or NaN. No
// "nothing seen yet" state, so the sweep is branch-free selects.
template <class T>
void max_plane(const Pool2dShape& s, const T* x, T* y, std::int64_t* argmax) {
  const std::int64_t out_h = s.out_h(), out_w = s.out_w(), sw = s.stride_w;
  for (std::int64_t oh = 0; oh < out_h; ++oh) {
    T* yr = y + oh * out_w;
    std::int64_t* ar = argmax + oh * out_w;
    const std::int64_t row0 = oh * s.stride_h - s.pad_h;
    const std::int64_t first_row = row0 < 0 ? 0 : row0;
    for (std::int64_t ow = 0; ow < out_w; ++ow) {
      const std::int64_t col0 = ow * sw - s.pad_w;
      yr[ow] = -std::numeric_limits<T>::infinity();
      ar[ow] = first_row * s.w + (col0 < 0 ? 0 : col0);
    }
    for (std::int64_t i = 0; i < s.kh; ++i) {
      const std::int64_t r = row0 + i;
      if (r < 0 || r >= s.h) continue;
      const T* xr = x + r * s.w;
      for (std::int64_t j = 0; j < s.kw; ++j) {
        const std::int64_t offset = j - s.pad_w;
        const ColumnRange cr = columns(offset, sw, s.w, out_w);
        const std::int64_t at = r * s.w + offset;  // a local: stores to ar could alias s.w
#pragma omp simd
        for (std::int64_t ow = cr.begin; ow < cr.end; ++ow) {
          const T v = xr[ow * sw + offset], best = yr[ow];
          const bool take = formulas::max_pool_takes(v, best);
          yr[ow] = take ? v : best;
          ar[ow] = take ? at + ow * sw : ar[ow];
        }
      }
    }
  }
}

template <class T>
void average_plane(const Pool2dShape& s, const T* x, T* y) {
  const std::int64_t out_h = s.out_h(), out_w = s.out_w(), sw = s.stride_w;
  const T area = static_cast<T>(s.kh * s.kw);
  for (std::int64_t oh = 0; oh < out_h; ++oh) {
    T* yr = y + oh * out_w;
    for (std::int64_t ow = 0; ow < out_w; ++ow) yr[ow] = 0;
    for (std::int64_t i = 0; i < s.kh; ++i) {
      const std::int64_t r = oh * s.stride_h - s.pad_h + i;
      if (r < 0 || r >= s.h) continue;
      const T* xr = x + r * s.w;
      for (std::int64_t j = 0; j < s.kw; ++j) {
        const std::int64_t offset = j - s.pad_w;
        const ColumnRange cr = columns(offset, sw, s.w, out_w);
#pragma omp simd
        for (std::int64_t ow = cr.begin; ow < cr.end; ++ow) yr[ow] += xr[ow * sw + offset];
      }
    }
#pragma omp simd
    for (std::int64_t ow = 0; ow < out_w; ++ow) yr[ow] /= area;
  }
}

// Overlapping windows (stride < kernel) send several dy to one dx: the plane is summed
// serially, so the order of those additions is fixed.
template <class T>
void average_plane_backward(const Pool2dShape& s, const T* dy, T* dx) {
  const std::int64_t out_h = s.out_h(), out_w = s.out_w(), sw = s.stride_w;
  const T area = static_cast<T>(s.kh * s.kw);
  for (std::int64_t k = 0; k < s.h * s.w; ++k) dx[k] = 0;
  for (std::int64_t oh = 0; oh < out_h; ++oh) {
    const T* dyr = dy + oh * out_w;
    for (std::int64_t i = 0; i < s.kh; ++i) {
      const std::int64_t r = oh * s.stride_h - s.pad_h + i;
      if (r < 0 || r >= s.h) continue;
      T* dxr = dx + r * s.w;
      for (std::int64_t j = 0; j < s.kw; ++j) {
        const std::int64_t offset = j - s.pad_w;
        const ColumnRange cr = columns(offset, sw, s.w, out_w);
#pragma omp simd
        for (std::int64_t ow = cr.begin; ow < cr.end; ++ow) dxr[ow * sw + offset] += dyr[ow] / area;
      }
    }
  }
}

template <class T>
void max_plane_backward(std::int64_t plane_size, std::int64_t outputs, const T* dy,
                        const std::int64_t* argmax, T* dx) {
  for (std::int64_t k = 0; k < plane_size; ++k) dx[k] = 0;
  for (std::int64_t o = 0; o < outputs; ++o) dx[argmax[o]] += dy[o];
}

// PyTorch's adaptive windows (kernels/formulas/pool.h, shared with kernels/cuda/pool.cu).
using formulas::adaptive_begin;
using formulas::adaptive_end;

template <class T>
void adaptive_plane(std::int64_t h, std::int64_t w, std::int64_t out_h, std::int64_t out_w,
                    const T* x, T* y) {
  for (std::int64_t oh = 0; oh < out_h; ++oh) {
    const std::int64_t r0 = adaptive_begin(oh, h, out_h), r1 = adaptive_end(oh, h, out_h);
    for (std::int64_t ow = 0; ow < out_w; ++ow) {
      const std::int64_t q0 = adaptive_begin(ow, w, out_w), q1 = adaptive_end(ow, w, out_w);
      T total = 0;
      if (q0 == 0 && q1 == w) {  // whole rows (global pooling): one contiguous run
        const T* block = x + r0 * w;
#pragma omp simd reduction(+ : total)
        for (std::int64_t k = 0; k < (r1 - r0) * w; ++k) total += block[k];
      } else {
        for (std::int64_t r = r0; r < r1; ++r) {
          const T* xr = x + r * w;
#pragma omp simd reduction(+ : total)
          for (std::int64_t q = q0; q < q1; ++q) total += xr[q];
        }
      }
      y[oh * out_w + ow] = total / static_cast<T>((r1 - r0) * (q1 - q0));
    }
  }
}

template <class T>
void adaptive_plane_backward(std::int64_t h, std::int64_t w, std::int64_t out_h,
                             std::int64_t out_w, const T* dy, T* dx) {
  for (std::int64_t k = 0; k < h * w; ++k) dx[k] = 0;
  for (std::int64_t oh = 0; oh < out_h; ++oh) {
    const std::int64_t r0 = adaptive_begin(oh, h, out_h), r1 = adaptive_end(oh, h, out_h);
    for (std::int64_t ow = 0; ow < out_w; ++ow) {
      const std::int64_t q0 = adaptive_begin(ow, w, out_w), q1 = adaptive_end(ow, w, out_w);
      const T g = dy[oh * out_w + ow] / static_cast<T>((r1 - r0) * (q1 - q0));
      for (std::int64_t r = r0; r < r1; ++r) {
        T* dxr = dx + r * w;
#pragma omp simd
        for (std::int64_t q = q0; q < q1; ++q) dxr[q] += g;
      }
    }
  }
}

// Runs body(p) for every plane, threaded when the input is large enough to pay for it.
template <class F>
void for_each_plane(std::int64_t planes, std::int64_t work, F&& body) {
#pragma omp parallel for schedule(static) if (work > kParallelGrain && planes > 1)
  for (std::int64_t p = 0; p < planes; ++p) body(p);
}

}  // namespace

void CpuBackend::pool2d(PoolOp op, DType t, const Pool2dShape& s, const void* x, void* y,
                        std::int64_t* argmax) {
  if (op == PoolOp::Max && argmax == nullptr)
    throw Unsupported("pool2d: max pooling needs an argmax buffer");
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* src = static_cast<const T*>(x);
    T* dst = static_cast<T*>(y);
    const std::int64_t in_plane = s.h * s.w, out_plane = s.out_h() * s.out_w();
    for_each_plane(s.n * s.c, s.n * s.c * in_plane, [&](std::int64_t p) {
      if (op == PoolOp::Max)
        max_plane(s, src + p * in_plane, dst + p * out_plane, argmax + p * out_plane);
      else
        average_plane(s, src + p * in_plane, dst + p * out_plane);
    });
  }, "pool2d");
}

void CpuBackend::pool2d_backward(PoolOp op, DType t, const Pool2dShape& s, const void* dy,
                                 const std::int64_t* argmax, void* dx) {
  if (op == PoolOp::Max && argmax == nullptr)
    throw Unsupported("pool2d_backward: max pooling needs the forward's argmax");
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* g = static_cast<const T*>(dy);
    T* out = static_cast<T*>(dx);
    const std::int64_t in_plane = s.h * s.w, out_plane = s.out_h() * s.out_w();
    for_each_plane(s.n * s.c, s.n * s.c * in_plane, [&](std::int64_t p) {
      if (op == PoolOp::Max)
        max_plane_backward(in_plane, out_plane, g + p * out_plane, argmax + p * out_plane,
                           out + p * in_plane);
      else
        average_plane_backward(s, g + p * out_plane, out + p * in_plane);
    });
  }, "pool2d_backward");
}

void CpuBackend::adaptive_avg_pool2d(DType t, std::int64_t planes, std::int64_t h,
                                     std::int64_t w, std::int64_t out_h, std::int64_t out_w,
                                     const void* x, void* y) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* src = static_cast<const T*>(x);
    T* dst = static_cast<T*>(y);
    for_each_plane(planes, planes * h * w, [&](std::int64_t p) {
      adaptive_plane(h, w, out_h, out_w, src + p * h * w, dst + p * out_h * out_w);
    });
  }, "adaptive_avg_pool2d");
}

void CpuBackend::adaptive_avg_pool2d_backward(DType t, std::int64_t planes, std::int64_t h,
                                              std::int64_t w, std::int64_t out_h,
                                              std::int64_t out_w, const void* dy, void* dx) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* g = static_cast<const T*>(dy);
    T* out = static_cast<T*>(dx);
    for_each_plane(planes, planes * h * w, [&](std::int64_t p) {
      adaptive_plane_backward(h, w, out_h, out_w, g + p * out_h * out_w, out + p * h * w);
    });
  }, "adaptive_avg_pool2d_backward");
}

}  // namespace shrink::kernels::cpu
