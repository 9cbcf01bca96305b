// Reference 2-D convolution (cross-correlation, as PyTorch) over NCHW: the direct seven-deep
// loop, accumulated in double, for the forward pass and both adjoints. The tests' oracle for
// kernels/cpu/conv.cpp (im2col + packed GEMM, direct depthwise) and the CUDA twin. Plain
// loops written from the definition, never calling the optimised kernels.
//
//   y[n, o, i, j] = b[o] + sum_{c, r, q} w[o, c, r, q] x[n, g cig + c, i sh - ph + r dh,
//                                                               j sw - pw + q dw]
// with g = o / cog, cig = c_in / groups, cog = c_out / groups, and x = 0 outside the image.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/kernel_types.h"

namespace shrink::kernels::reference {

// Calls f(n, o, i, j, c, r, q, x_index) for every term of the sum above whose input pixel is
// inside the image; x_index is the flat NCHW index of that pixel. One loop shared by the
// three passes, so they read the same definition.
template <class F>
void for_each_conv_term(const Conv2dShape& s, F&& f) {
  const std::int64_t cig = s.c_in / s.groups, cog = s.c_out / s.groups;
  const std::int64_t oh = s.out_h(), ow = s.out_w();
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t o = 0; o < s.c_out; ++o)
      for (std::int64_t i = 0; i < oh; ++i)
        for (std::int64_t j = 0; j < ow; ++j)
          for (std::int64_t c = 0; c < cig; ++c)
            for (std::int64_t r = 0; r < s.kh; ++r)
              for (std::int64_t q = 0; q < s.kw; ++q) {
                const std::int64_t ih = i * s.stride_h - s.pad_h + r * s.dilation_h;
                const std::int64_t iw = j * s.stride_w - s.pad_w + q * s.dilation_w;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                const std::int64_t ci = o / cog * cig + c;
                f(n, o, i, j, c, r, q, ((n * s.c_in + ci) * s.h + ih) * s.w + iw);
              }
}

// y (n, c_out, out_h, out_w) = conv(x, weight) + bias (bias may be null).
template <class T>
void conv2d(const Conv2dShape& s, const T* x, const T* weight, const T* bias, T* y) {
  const std::int64_t cig = s.c_in / s.groups, oh = s.out_h(), ow = s.out_w();
  std::vector<double> acc(static_cast<std::size_t>(s.n * s.c_out * oh * ow), 0.0);
  for_each_conv_term(s, [&](std::int64_t n, std::int64_t o, std::int64_t i, std::int64_t j,
                            std::int64_t c, std::int64_t r, std::int64_t q, std::int64_t xi) {
    acc[static_cast<std::size_t>(((n * s.c_out + o) * oh + i) * ow + j)] +=
        static_cast<double>(weight[((o * cig + c) * s.kh + r) * s.kw + q]) * static_cast<double>(x[xi]);
  });
  for (std::int64_t k = 0; k < static_cast<std::int64_t>(acc.size()); ++k) {
    const std::int64_t o = k / (oh * ow) % s.c_out;
    y[k] = static_cast<T>(acc[static_cast<std::size_t>(k)] + (bias ? static_cast<double>(bias[o]) : 0.0));
  }
}

// dx (n, c_in, h, w) = conv's adjoint in x applied to dy (n, c_out, out_h, out_w).
template <class T>
void conv2d_backward_input(const Conv2dShape& s, const T* weight, const T* dy, T* dx) {
  const std::int64_t cig = s.c_in / s.groups, oh = s.out_h(), ow = s.out_w();
  std::vector<double> acc(static_cast<std::size_t>(s.n * s.c_in * s.h * s.w), 0.0);
  for_each_conv_term(s, [&](std::int64_t n, std::int64_t o, std::int64_t i, std::int64_t j,
                            std::int64_t c, std::int64_t r, std::int64_t q, std::int64_t xi) {
    acc[static_cast<std::size_t>(xi)] +=
        static_cast<double>(weight[((o * cig + c) * s.kh + r) * s.kw + q]) *
        static_cast<double>(dy[((n * s.c_out + o) * oh + i) * ow + j]);
  });
  for (std::size_t k = 0; k < acc.size(); ++k) dx[k] = static_cast<T>(acc[k]);
}

// dweight (c_out, c_in / groups, kh, kw) = sum over images and output pixels of dy x-patch.
template <class T>
void conv2d_backward_weight(const Conv2dShape& s, const T* x, const T* dy, T* dweight) {
  const std::int64_t cig = s.c_in / s.groups, oh = s.out_h(), ow = s.out_w();
  std::vector<double> acc(static_cast<std::size_t>(s.c_out * cig * s.kh * s.kw), 0.0);
  for_each_conv_term(s, [&](std::int64_t n, std::int64_t o, std::int64_t i, std::int64_t j,
                            std::int64_t c, std::int64_t r, std::int64_t q, std::int64_t xi) {
    acc[static_cast<std::size_t>(((o * cig + c) * s.kh + r) * s.kw + q)] +=
        static_cast<double>(dy[((n * s.c_out + o) * oh + i) * ow + j]) * static_cast<double>(x[xi]);
  });
  for (std::size_t k = 0; k < acc.size(); ++k) dweight[k] = static_cast<T>(acc[k]);
}

}  // namespace shrink::kernels::reference
