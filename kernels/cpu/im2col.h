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

// col (cig kh kw, out_h out_w) from x_g (cig, h, w); every element of col is written.
// `threaded`: split the channels over OpenMP threads (when the caller is not already parallel).
template <class T>
void im2col(const Conv2dShape& s, std::int64_t cig, const T* x_g, T* col, bool threaded);

// dx_g (cig, h, w) += the adjoint of im2col applied to col. Channels are independent (each
// writes its own plane), so threading over them keeps the sum order fixed.
template <class T>
void col2im_add(const Conv2dShape& s, std::int64_t cig, const T* col, T* dx_g, bool threaded);

}  // namespace shrink::kernels::cpu
