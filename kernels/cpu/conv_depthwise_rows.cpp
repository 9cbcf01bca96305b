// Depthwise convolutions on the row loops (kernels/cpu/conv_depthwise_rows.h).
#include "kernels/cpu/conv_depthwise_rows.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/column_phases.h"
#include "kernels/cpu/conv_epilogue.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/im2col.h"

namespace shrink::kernels::cpu {

namespace {

// A plane's zero-bordered copy (each thread's own): grow-only, kept across calls.
template <class T>
T* plane_copy(std::int64_t elements) {
  thread_local std::vector<T> buffer;
  if (static_cast<std::int64_t>(buffer.size()) < elements) buffer.resize(static_cast<std::size_t>(elements));
  return buffer.data();
}

// Each tap (r, q) adds w[c, r, q] times a shifted input row to an output row; inside
// tap_range the loop has no bounds test (contiguous and vectorised at stride 1). Rows are
// short (a MobileNet plane is 4-32 wide), so the ranges are computed once per call.

// The in-image output columns of each kernel column q.
std::vector<TapRange> column_ranges(const Conv2dShape& s) {
  std::vector<TapRange> r;
  for (std::int64_t q = 0; q < s.kw; ++q)
    r.push_back(tap_range(s.out_w(), s.w, s.stride_w, s.pad_w, q * s.dilation_w));
  return r;
}

// Calls tap(r, q, ih, jr, shift) for each kernel tap (r, q) of output row i whose input row ih
// is inside the image: jr the output columns whose input column is inside, shift the input
// column of output column 0 (at stride 1; j stride_w + shift in general).
template <class F>
void for_each_tap(const Conv2dShape& s, const std::vector<TapRange>& ranges, std::int64_t i, F&& tap) {
  for (std::int64_t r = 0; r < s.kh; ++r) {
    const std::int64_t ih = i * s.stride_h - s.pad_h + r * s.dilation_h;
    if (ih < 0 || ih >= s.h) continue;
    for (std::int64_t q = 0; q < s.kw; ++q)
      tap(r, q, ih, ranges[static_cast<std::size_t>(q)], q * s.dilation_w - s.pad_w);
  }
}

template <class T>
void forward_depthwise(const Conv2dShape& s, const T* x, const T* w, const T* bias, const ConvEpilogue& post, T* y) {
  const std::int64_t oh = s.out_h(), ow = s.out_w(), planes = s.n * s.c_in;
  const std::vector<TapRange> ranges = column_ranges(s);
#pragma omp parallel for schedule(static) if (planes > 1 && planes * oh * ow * s.kh * s.kw > kParallelGrain)
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    const std::int64_t c = plane % s.c_in;
    const T* xp = x + plane * s.h * s.w;  // (h, w)
    const T* wc = w + c * s.kh * s.kw;    // (kh, kw)
    T* yp = y + plane * oh * ow;          // (out_h, out_w)
    const T b = bias ? bias[c] : T(0);
    for (std::int64_t i = 0; i < oh; ++i) {
      T* yrow = yp + i * ow;
      std::fill(yrow, yrow + ow, b);
      for_each_tap(s, ranges, i, [&](std::int64_t r, std::int64_t q, std::int64_t ih, TapRange jr, std::int64_t shift) {
        const T* xrow = xp + ih * s.w;
        const T wv = wc[r * s.kw + q];
        if (s.stride_w == 1) {
#pragma omp simd
          for (std::int64_t j = jr.lo; j < jr.hi; ++j) yrow[j] += wv * xrow[j + shift];
        } else {
          for (std::int64_t j = jr.lo; j < jr.hi; ++j) yrow[j] += wv * xrow[j * s.stride_w + shift];
        }
      });
    }
    apply_epilogue(post, residual_at<T>(post, plane * oh * ow), yp, oh * ow);
  }
}

// Depthwise forward for a kh x kw filter known at compile time (3x3 in every MobileNetV2
// layer, 5x5 in others). The row-at-a-time loop above spends its time in loop overhead on
// short rows; here the plane is copied once into a zero-bordered buffer (when padded or
// strided), so an output pixel is a branch-free sum of KH KW taps kept in registers,
// vectorised across the row. Strided columns are split into phases by the copy
// (column_phases.h): a tap's inputs for consecutive pixels are then consecutive, where a
// stride-2 row had been read one float in two (scalar, at a fifth of the stride-1 speed). Same
// summation order as the generic loop (bias, then taps row by row).
template <int KH, int KW, class T>
void forward_depthwise_fixed(const Conv2dShape& s, const T* x, const T* w, const T* bias, const ConvEpilogue& post,
                             T* y) {
  const std::int64_t oh = s.out_h(), ow = s.out_w(), planes = s.n * s.c_in;
  const std::int64_t sh = s.stride_h, sw = s.stride_w;
  const bool copied = s.pad_h > 0 || s.pad_w > 0 || sw > 1;
  const std::int64_t hp = s.h + 2 * s.pad_h, wp = s.w + 2 * s.pad_w, wq = (wp + sw - 1) / sw;  // copy: (sw, hp, wq)
  // Tap (r, q) of output pixel (i, j) reads phase u % sw, row i sh + r dh, position j + u / sw
  // (u = q dw): off[tap] + i sh wq + j. Rows and columns stay inside by out_h / out_w's definition.
  std::int64_t off[KH * KW];
  for (int r = 0; r < KH; ++r)
    for (int q = 0; q < KW; ++q) {
      const std::int64_t u = q * s.dilation_w;
      off[r * KW + q] = (u % sw * hp + r * s.dilation_h) * wq + u / sw;
    }
#pragma omp parallel if (planes > 1 && planes * oh * ow * KH * KW > kParallelGrain)
  {
    // Each thread's copy: zeroed once, since every plane then writes the same interior positions.
    T* const buf = copied ? plane_copy<T>(sw * hp * wq) : nullptr;
    if (copied) std::fill_n(buf, sw * hp * wq, T(0));
#pragma omp for schedule(static)
    for (std::int64_t plane = 0; plane < planes; ++plane) with_epilogue(post, [&]<bool Add, EpilogueAct Act>() {
      const std::int64_t c = plane % s.c_in;
      const T* src = x + plane * s.h * s.w;  // (h, w), or the (sw, hp, wq) copy
      if (copied) {
        for (std::int64_t i = 0; i < s.h; ++i)
          split_row_by_phase(src + i * s.w, s.w, s.pad_w, sw, buf + (i + s.pad_h) * wq, hp * wq);
        src = buf;
      }
      T tap[KH * KW];
      std::copy_n(w + c * KH * KW, KH * KW, tap);
      const T b = bias ? bias[c] : T(0);
      T* yp = y + plane * oh * ow;                            // (out_h, out_w)
      const T* rp = residual_at<T>(post, plane * oh * ow);  // the residual there, when Add
      for (std::int64_t i = 0; i < oh; ++i) {
        const T* base = src + i * sh * wq;
        T* yrow = yp + i * ow;
        const T* rrow = Add ? rp + i * ow : nullptr;
#pragma omp simd
        for (std::int64_t j = 0; j < ow; ++j) {
          T acc = b;
          for (int t = 0; t < KH * KW; ++t) acc += tap[t] * base[off[t] + j];
          yrow[j] = epilogue1<Add, Act>(acc, Add ? rrow[j] : T(0));  // in the store: no pass of its own
        }
      }
    });
  }
}

}  // namespace

template <class T>
void conv2d_backward_input_depthwise_rows(const Conv2dShape& s, const T* w, const T* dy, T* dx) {
  const std::int64_t oh = s.out_h(), ow = s.out_w(), planes = s.n * s.c_in;
  const std::vector<TapRange> ranges = column_ranges(s);
#pragma omp parallel for schedule(static) if (planes > 1 && planes * oh * ow * s.kh * s.kw > kParallelGrain)
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    const std::int64_t c = plane % s.c_in;
    const T* dyp = dy + plane * oh * ow;  // (out_h, out_w)
    const T* wc = w + c * s.kh * s.kw;    // (kh, kw)
    T* dxp = dx + plane * s.h * s.w;      // (h, w)
    std::fill(dxp, dxp + s.h * s.w, T(0));
    for (std::int64_t i = 0; i < oh; ++i) {
      const T* dyrow = dyp + i * ow;
      for_each_tap(s, ranges, i, [&](std::int64_t r, std::int64_t q, std::int64_t ih, TapRange jr, std::int64_t shift) {
        T* dxrow = dxp + ih * s.w;
        const T wv = wc[r * s.kw + q];
        if (s.stride_w == 1) {
#pragma omp simd
          for (std::int64_t j = jr.lo; j < jr.hi; ++j) dxrow[j + shift] += wv * dyrow[j];
        } else {
          for (std::int64_t j = jr.lo; j < jr.hi; ++j) dxrow[j * s.stride_w + shift] += wv * dyrow[j];
        }
      });
    }
  }
}

// One thread owns each channel and sums its images in order: deterministic on any thread
// count. Row dot products in T, their total per tap in double.
template <class T>
void conv2d_backward_weight_depthwise_rows(const Conv2dShape& s, const T* x, const T* dy, T* dw) {
  const std::int64_t oh = s.out_h(), ow = s.out_w(), taps = s.kh * s.kw;
  const std::vector<TapRange> ranges = column_ranges(s);
#pragma omp parallel for schedule(static) if (s.c_in > 1 && s.n * s.c_in * oh * ow * taps > kParallelGrain)
  for (std::int64_t c = 0; c < s.c_in; ++c) {
    std::vector<double> acc(static_cast<std::size_t>(taps), 0.0);  // (kh, kw); taps are few
    for (std::int64_t n = 0; n < s.n; ++n) {
      const T* xp = x + (n * s.c_in + c) * s.h * s.w;
      const T* dyp = dy + (n * s.c_in + c) * oh * ow;
      for (std::int64_t i = 0; i < oh; ++i) {
        const T* dyrow = dyp + i * ow;
        for_each_tap(s, ranges, i, [&](std::int64_t r, std::int64_t q, std::int64_t ih, TapRange jr, std::int64_t shift) {
          const T* xrow = xp + ih * s.w;
          T dot = 0;
          if (s.stride_w == 1) {
#pragma omp simd reduction(+ : dot)
            for (std::int64_t j = jr.lo; j < jr.hi; ++j) dot += dyrow[j] * xrow[j + shift];
          } else {
            for (std::int64_t j = jr.lo; j < jr.hi; ++j) dot += dyrow[j] * xrow[j * s.stride_w + shift];
          }
          acc[static_cast<std::size_t>(r * s.kw + q)] += static_cast<double>(dot);
        });
      }
    }
    for (std::int64_t t = 0; t < taps; ++t) dw[c * taps + t] = static_cast<T>(acc[static_cast<std::size_t>(t)]);
  }
}

// Depthwise forward on the row loops: a fixed-size filter's, else the generic one.
template <class T>
void conv2d_forward_depthwise_rows(const Conv2dShape& s, const T* x, const T* w, const T* bias, const ConvEpilogue& post,
                            T* y) {
  if (s.kh == 3 && s.kw == 3) forward_depthwise_fixed<3, 3>(s, x, w, bias, post, y);
  else if (s.kh == 5 && s.kw == 5) forward_depthwise_fixed<5, 5>(s, x, w, bias, post, y);
  else forward_depthwise(s, x, w, bias, post, y);
}


#define SHRINK_DEPTHWISE_ROWS(T)                                                                                   \
  template void conv2d_forward_depthwise_rows<T>(const Conv2dShape&, const T*, const T*, const T*,                \
                                                 const ConvEpilogue&, T*);                                         \
  template void conv2d_backward_input_depthwise_rows<T>(const Conv2dShape&, const T*, const T*, T*);              \
  template void conv2d_backward_weight_depthwise_rows<T>(const Conv2dShape&, const T*, const T*, T*);
SHRINK_DEPTHWISE_ROWS(float)
SHRINK_DEPTHWISE_ROWS(double)
#undef SHRINK_DEPTHWISE_ROWS

}  // namespace shrink::kernels::cpu
