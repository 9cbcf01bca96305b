// A Conv2dShape from its fields in one call, for the convolution kernel tests (CPU and CUDA)
// and their tables of odd shapes.
#pragma once
#include <cstdint>

#include "kernels/kernel_types.h"

namespace shrink::testing {

inline kernels::Conv2dShape conv_shape(std::int64_t n, std::int64_t c_in, std::int64_t h, std::int64_t w,
                                       std::int64_t c_out, std::int64_t kh, std::int64_t kw,
                                       std::int64_t stride_h, std::int64_t stride_w, std::int64_t pad_h,
                                       std::int64_t pad_w, std::int64_t dilation_h, std::int64_t dilation_w,
                                       std::int64_t groups) {
  kernels::Conv2dShape s;
  s.n = n, s.c_in = c_in, s.h = h, s.w = w, s.c_out = c_out, s.kh = kh, s.kw = kw;
  s.stride_h = stride_h, s.stride_w = stride_w, s.pad_h = pad_h, s.pad_w = pad_w;
  s.dilation_h = dilation_h, s.dilation_w = dilation_w, s.groups = groups;
  return s;
}

}  // namespace shrink::testing
