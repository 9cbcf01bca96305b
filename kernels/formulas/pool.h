// The index formulas and the max rule of pooling, shared by kernels/cpu/pool.cpp and
// kernels/cuda/pool.cu, and the GPU's per-element computations (one output, or one input
// element's gradient, per thread). The CPU sweeps whole planes instead, but the GPU's
// functions are plain host/device code so that tests/test_pool_formulas.cpp checks them
// against the CPU kernel on a machine without a GPU.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/formulas/hd.h"
#include "kernels/kernel_types.h"

namespace shrink::kernels::formulas {

// PyTorch's adaptive window of output i out of `out` over `in` positions:
// [floor(i in / out), ceil((i + 1) in / out)).
SHRINK_HD std::int64_t adaptive_begin(std::int64_t i, std::int64_t in, std::int64_t out) {
  return i * in / out;
}
SHRINK_HD std::int64_t adaptive_end(std::int64_t i, std::int64_t in, std::int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}
// The outputs whose adaptive windows contain input position r are the adaptive window of r
// with the roles of `in` and `out` swapped: floor(o in / out) <= r < ceil((o + 1) in / out)
// holds exactly for o in [floor(r out / in), ceil((r + 1) out / in)).
SHRINK_HD std::int64_t adaptive_first_output(std::int64_t r, std::int64_t in, std::int64_t out) {
  return adaptive_begin(r, out, in);
}
SHRINK_HD std::int64_t adaptive_end_output(std::int64_t r, std::int64_t in, std::int64_t out) {
  return adaptive_end(r, out, in);
}

// The outputs [first, end) along one axis whose window (start o stride - pad, `span` wide)
// contains input position r: o stride - pad <= r <= o stride - pad + span - 1, clipped to
// [0, out).
struct OutputRange {
  std::int64_t first, end;
};
SHRINK_HD OutputRange windows_containing(std::int64_t r, std::int64_t span, std::int64_t stride,
                                         std::int64_t pad, std::int64_t out) {
  const std::int64_t hi = r + pad;           // o stride <= hi
  const std::int64_t lo = hi - (span - 1);   // o stride >= lo
  std::int64_t first = lo <= 0 ? 0 : (lo + stride - 1) / stride;
  std::int64_t end = hi < 0 ? 0 : hi / stride + 1;
  if (end > out) end = out;
  if (first > end) first = end;
  return {first, end};
}

// Max pooling's rule, visiting a window in row-major order from -inf: a value replaces the
// running maximum only when strictly larger (the first maximum wins ties) or NaN (a NaN beats
// any number; a later NaN replaces an earlier one, as PyTorch's `val > max || isnan(val)`).
template <class T>
SHRINK_HD bool max_pool_takes(T v, T best) {
  return (v > best) | (v != v);
}

// ---- per element (kernels/cuda/pool.cu); planes are (h, w) and (out_h, out_w) ----

// Output (oh, ow) of max pooling: visits the window in row-major order from -inf, with the
// window's first in-bounds position as argmax (kept when every value is -inf), as the CPU.
template <class T>
SHRINK_HD void max_pool_at(const Pool2dShape& s, std::int64_t oh, std::int64_t ow, const T* plane,
                           T& y, std::int64_t& argmax) {
  const std::int64_t row0 = oh * s.stride_h - s.pad_h, col0 = ow * s.stride_w - s.pad_w;
  T best = -static_cast<T>(INFINITY);
  std::int64_t best_at = (row0 < 0 ? 0 : row0) * s.w + (col0 < 0 ? 0 : col0);
  for (std::int64_t i = 0; i < s.kh; ++i) {
    const std::int64_t r = row0 + i;
    if (r < 0 || r >= s.h) continue;
    for (std::int64_t j = 0; j < s.kw; ++j) {
      const std::int64_t q = col0 + j;
      if (q < 0 || q >= s.w) continue;
      const T v = plane[r * s.w + q];
      if (max_pool_takes(v, best)) {
        best = v;
        best_at = r * s.w + q;
      }
    }
  }
  y = best;
  argmax = best_at;
}

// Output (oh, ow) of average pooling: the window's in-bounds values summed in row-major order
// (the CPU's order), over kh kw (padding counted).
template <class T>
SHRINK_HD T avg_pool_at(const Pool2dShape& s, std::int64_t oh, std::int64_t ow, const T* plane) {
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
  return sum / static_cast<T>(s.kh * s.kw);
}

// dx at input (r, q) of max pooling: the sum of dy over the outputs whose argmax is (r, q).
// Only outputs whose window contains (r, q) can name it; added in output order, as the CPU's
// scatter `dx[argmax[o]] += dy[o]`.
template <class T>
SHRINK_HD T max_pool_backward_at(const Pool2dShape& s, std::int64_t out_h, std::int64_t out_w,
                                 std::int64_t r, std::int64_t q, const T* dy,
                                 const std::int64_t* argmax) {
  const OutputRange rows = windows_containing(r, s.kh, s.stride_h, s.pad_h, out_h);
  const OutputRange cols = windows_containing(q, s.kw, s.stride_w, s.pad_w, out_w);
  const std::int64_t here = r * s.w + q;
  T sum = 0;
  for (std::int64_t oh = rows.first; oh < rows.end; ++oh)
    for (std::int64_t ow = cols.first; ow < cols.end; ++ow) {
      const std::int64_t o = oh * out_w + ow;
      if (argmax[o] == here) sum += dy[o];
    }
  return sum;
}

// dx at input (r, q) of average pooling: dy / (kh kw) summed over the windows containing
// (r, q). The CPU's scatter adds them output row by output row and, within one, by window
// column ascending, that is output column descending: the same order here.
template <class T>
SHRINK_HD T avg_pool_backward_at(const Pool2dShape& s, std::int64_t out_h, std::int64_t out_w,
                                 std::int64_t r, std::int64_t q, const T* dy) {
  const OutputRange rows = windows_containing(r, s.kh, s.stride_h, s.pad_h, out_h);
  const OutputRange cols = windows_containing(q, s.kw, s.stride_w, s.pad_w, out_w);
  const T area = static_cast<T>(s.kh * s.kw);
  T sum = 0;
  for (std::int64_t oh = rows.first; oh < rows.end; ++oh)
    for (std::int64_t ow = cols.end - 1; ow >= cols.first; --ow) sum += dy[oh * out_w + ow] / area;
  return sum;
}

// Output (oh, ow) of adaptive average pooling: the window's mean, summed in row-major order.
template <class T>
SHRINK_HD T adaptive_avg_at(std::int64_t h, std::int64_t w, std::int64_t out_h, std::int64_t out_w,
                            std::int64_t oh, std::int64_t ow, const T* plane) {
  const std::int64_t r0 = adaptive_begin(oh, h, out_h), r1 = adaptive_end(oh, h, out_h);
  const std::int64_t q0 = adaptive_begin(ow, w, out_w), q1 = adaptive_end(ow, w, out_w);
  T sum = 0;
  for (std::int64_t r = r0; r < r1; ++r)
    for (std::int64_t q = q0; q < q1; ++q) sum += plane[r * w + q];
  return sum / static_cast<T>((r1 - r0) * (q1 - q0));
}

// dx at input (r, q) of adaptive average pooling: dy / window size summed over the outputs
// whose windows contain (r, q), in output order as the CPU's scatter.
template <class T>
SHRINK_HD T adaptive_avg_backward_at(std::int64_t h, std::int64_t w, std::int64_t out_h,
                                     std::int64_t out_w, std::int64_t r, std::int64_t q,
                                     const T* dy) {
  const std::int64_t oh0 = adaptive_first_output(r, h, out_h);
  const std::int64_t oh1 = adaptive_end_output(r, h, out_h);
  const std::int64_t ow0 = adaptive_first_output(q, w, out_w);
  const std::int64_t ow1 = adaptive_end_output(q, w, out_w);
  T sum = 0;
  for (std::int64_t oh = oh0; oh < oh1; ++oh) {
    const std::int64_t rows = adaptive_end(oh, h, out_h) - adaptive_begin(oh, h, out_h);
    for (std::int64_t ow = ow0; ow < ow1; ++ow) {
      const std::int64_t cols = adaptive_end(ow, w, out_w) - adaptive_begin(ow, w, out_w);
      sum += dy[oh * out_w + ow] / static_cast<T>(rows * cols);
    }
  }
  return sum;
}

}  // namespace shrink::kernels::formulas
