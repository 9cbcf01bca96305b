// Reference pooling over NCHW planes: max and average pooling with stride and padding, and
// PyTorch's adaptive average pooling, with their adjoints. Plain loops, one output at a time
// reading its whole window; the tests' oracle for kernels/cpu/pool.cpp.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/kernel_types.h"

namespace shrink::kernels::reference {

// y, argmax: (planes, out_h, out_w) with planes = n c. Max: the first maximum of the window in
// row-major order, a NaN beating any number (the last NaN of the window, as PyTorch's
// `val > max || isnan(val)`); padding never wins. Average:
// the sum of the window's in-bounds values over kh kw (padding counted as zeros).
template <class T>
void pool2d(PoolOp op, const Pool2dShape& s, const T* x, T* y, std::int64_t* argmax) {
  const std::int64_t planes = s.n * s.c, oh_n = s.out_h(), ow_n = s.out_w();
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t oh = 0; oh < oh_n; ++oh)
      for (std::int64_t ow = 0; ow < ow_n; ++ow) {
        const T* plane = x + p * s.h * s.w;
        T best = 0;
        std::int64_t best_at = -1;
        double total = 0;
        for (std::int64_t i = 0; i < s.kh; ++i)
          for (std::int64_t j = 0; j < s.kw; ++j) {
            const std::int64_t r = oh * s.stride_h - s.pad_h + i, q = ow * s.stride_w - s.pad_w + j;
            if (r < 0 || r >= s.h || q < 0 || q >= s.w) continue;
            const T v = plane[r * s.w + q];
            total += static_cast<double>(v);
            if (best_at < 0 || v > best || std::isnan(v)) {
              best = v;
              best_at = r * s.w + q;
            }
          }
        const std::int64_t o = (p * oh_n + oh) * ow_n + ow;
        if (op == PoolOp::Max) {
          y[o] = best;
          if (argmax) argmax[o] = best_at;
        } else {
          y[o] = static_cast<T>(total / static_cast<double>(s.kh * s.kw));
        }
      }
}

// dx (planes, h, w), overwritten: max adds each dy at its argmax; average adds dy / (kh kw)
// to every in-bounds position of the window.
template <class T>
void pool2d_backward(PoolOp op, const Pool2dShape& s, const T* dy, const std::int64_t* argmax,
                     T* dx) {
  const std::int64_t planes = s.n * s.c, oh_n = s.out_h(), ow_n = s.out_w();
  for (std::int64_t k = 0; k < planes * s.h * s.w; ++k) dx[k] = 0;
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t oh = 0; oh < oh_n; ++oh)
      for (std::int64_t ow = 0; ow < ow_n; ++ow) {
        const std::int64_t o = (p * oh_n + oh) * ow_n + ow;
        T* plane = dx + p * s.h * s.w;
        if (op == PoolOp::Max) {
          plane[argmax[o]] += dy[o];
          continue;
        }
        for (std::int64_t i = 0; i < s.kh; ++i)
          for (std::int64_t j = 0; j < s.kw; ++j) {
            const std::int64_t r = oh * s.stride_h - s.pad_h + i, q = ow * s.stride_w - s.pad_w + j;
            if (r < 0 || r >= s.h || q < 0 || q >= s.w) continue;
            plane[r * s.w + q] += dy[o] / static_cast<T>(s.kh * s.kw);
          }
      }
}

// PyTorch's adaptive window of output i out of `out` over `in`: [floor(i in / out),
// ceil((i + 1) in / out)).
inline std::int64_t adaptive_begin(std::int64_t i, std::int64_t in, std::int64_t out) {
  return i * in / out;
}
inline std::int64_t adaptive_end(std::int64_t i, std::int64_t in, std::int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

// x (planes, h, w) -> y (planes, out_h, out_w): the mean of each adaptive window.
template <class T>
void adaptive_avg_pool2d(std::int64_t planes, std::int64_t h, std::int64_t w, std::int64_t out_h,
                         std::int64_t out_w, const T* x, T* y) {
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t oh = 0; oh < out_h; ++oh)
      for (std::int64_t ow = 0; ow < out_w; ++ow) {
        const std::int64_t r0 = adaptive_begin(oh, h, out_h), r1 = adaptive_end(oh, h, out_h);
        const std::int64_t q0 = adaptive_begin(ow, w, out_w), q1 = adaptive_end(ow, w, out_w);
        double total = 0;
        for (std::int64_t r = r0; r < r1; ++r)
          for (std::int64_t q = q0; q < q1; ++q) total += static_cast<double>(x[(p * h + r) * w + q]);
        y[(p * out_h + oh) * out_w + ow] = static_cast<T>(total / static_cast<double>((r1 - r0) * (q1 - q0)));
      }
}

// dx (planes, h, w), overwritten: each dy spread evenly over its window.
template <class T>
void adaptive_avg_pool2d_backward(std::int64_t planes, std::int64_t h, std::int64_t w,
                                  std::int64_t out_h, std::int64_t out_w, const T* dy, T* dx) {
  for (std::int64_t k = 0; k < planes * h * w; ++k) dx[k] = 0;
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t oh = 0; oh < out_h; ++oh)
      for (std::int64_t ow = 0; ow < out_w; ++ow) {
        const std::int64_t r0 = adaptive_begin(oh, h, out_h), r1 = adaptive_end(oh, h, out_h);
        const std::int64_t q0 = adaptive_begin(ow, w, out_w), q1 = adaptive_end(ow, w, out_w);
        const T g = dy[(p * out_h + oh) * out_w + ow] / static_cast<T>((r1 - r0) * (q1 - q0));
        for (std::int64_t r = r0; r < r1; ++r)
          for (std::int64_t q = q0; q < q1; ++q) dx[(p * h + r) * w + q] += g;
      }
}

}  // namespace shrink::kernels::reference
