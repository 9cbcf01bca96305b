// im2col / col2im for one image and one group of a 2-D convolution (kernels/cpu/conv.cpp).
// col (K, P), K = cig kh kw rows in (channel, kernel row, kernel column) order and
// P = out_h out_w columns: row (c, r, q) holds the input pixels that kernel tap (r, q) of
// channel c meets at each output position, 0 where the tap falls into the padding. Then
// y_g (cog, P) = W_g (cog, K) col, since W_g's rows are laid out (c, r, q) too.
#pragma once
#include <cstdint>

#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

// The output columns j in [lo, hi) whose input column j * stride - pad + tap_offset lies in
// [0, size): the branch-free range of an inner loop (empty when lo >= hi).
struct TapRange {
  std::int64_t lo, hi;
};
inline TapRange tap_range(std::int64_t out, std::int64_t size, std::int64_t stride,
                          std::int64_t pad, std::int64_t tap_offset) {
  // j * stride + d in [0, size) with d = tap_offset - pad.
  const std::int64_t d = tap_offset - pad;
  std::int64_t lo = d >= 0 ? 0 : (-d + stride - 1) / stride;
  std::int64_t hi = size - d <= 0 ? 0 : (size - d - 1) / stride + 1;
  if (lo > out) lo = out;
  if (hi > out) hi = out;
  return {lo, hi};
}

// For images b = 0 .. images-1 of one group, x_b = x + b image_stride (cig, h, w):
// col[:, b P .. (b+1) P) = im2col(x_b), col (cig kh kw, ld) with P = out_h out_w <= ld / images.
// Every element of those columns is written. `threaded`: split (image, channel) pairs over
// OpenMP threads (when the caller is not already parallel).
template <class T>
void im2col(const Conv2dShape& s, std::int64_t cig, const T* x, std::int64_t image_stride,
            std::int64_t images, T* col, std::int64_t ld, bool threaded);

// The adjoint: dx_b (cig, h, w) += col2im(col[:, b P .. (b+1) P)) for each image b, with
// dx_b = dx + b image_stride. Each (image, channel) plane is written by one thread in a fixed
// (r, q, i, j) order, so threading keeps the sum order.
template <class T>
void col2im_add(const Conv2dShape& s, std::int64_t cig, const T* col, std::int64_t ld,
                std::int64_t images, T* dx, std::int64_t image_stride, bool threaded);

}  // namespace shrink::kernels::cpu
