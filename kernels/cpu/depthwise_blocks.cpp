// The 8-channel blocks of the blocked depthwise kernels (kernels/cpu/depthwise_blocks.h).
#include "kernels/cpu/depthwise_blocks.h"

#include <algorithm>

#include "kernels/cpu/simd_transpose.h"
#include "kernels/cpu/tiling.h"

namespace shrink::kernels::cpu::depthwise_blocks {

Offsets offsets_of(const Conv2dShape& s) {
  const std::int64_t wp = s.w + 2 * s.pad_w, oh = s.out_h(), ow = s.out_w();
  Offsets o;
  for (std::int64_t p = 0; p < s.h * s.w; ++p) o.in.push_back(((p / s.w + s.pad_h) * wp + p % s.w + s.pad_w) * kLanes);
  for (std::int64_t p = 0; p < oh * ow; ++p)
    o.out.push_back((p / ow * s.stride_h * wp + p % ow * s.stride_w) * kLanes);
  for (std::int64_t r = 0; r < s.kh; ++r)
    for (std::int64_t q = 0; q < s.kw; ++q) o.tap.push_back((r * s.dilation_h * wp + q * s.dilation_w) * kLanes);
  return o;
}

std::int64_t copy_floats(const Conv2dShape& s) { return (s.h + 2 * s.pad_h) * (s.w + 2 * s.pad_w) * kLanes; }

void load_block_pixels(const float* planes, std::int64_t plane, std::int64_t lanes, std::int64_t p,
                       std::int64_t count, __m256 r[kLanes]) {
  for (std::int64_t l = 0; l < kLanes; ++l)
    r[l] = l < lanes ? load_pixels(planes + l * plane, p, count) : _mm256_setzero_ps();
  transpose8(r);
}

void copy_block(const float* x, std::int64_t plane, std::int64_t lanes, const Offsets& o, float* copy) {
  const std::int64_t pixels = static_cast<std::int64_t>(o.in.size());
  for (std::int64_t p = 0; p < pixels; p += kLanes) {
    const std::int64_t count = std::min(kLanes, pixels - p);
    __m256 r[kLanes];
    load_block_pixels(x, plane, lanes, p, count, r);
    for (std::int64_t k = 0; k < count; ++k) _mm256_store_ps(copy + o.in[static_cast<std::size_t>(p + k)], r[k]);
  }
}

void store_block(const float* copy, const Offsets& o, std::int64_t lanes, std::int64_t plane, float* x) {
  const std::int64_t pixels = static_cast<std::int64_t>(o.in.size());
  for (std::int64_t p = 0; p < pixels; p += kLanes) {
    const std::int64_t count = std::min(kLanes, pixels - p);
    __m256 r[kLanes];
    for (std::int64_t k = 0; k < kLanes; ++k)
      r[k] = k < count ? _mm256_load_ps(copy + o.in[static_cast<std::size_t>(p + k)]) : _mm256_setzero_ps();
    transpose8(r);  // r[l]: channel l's pixels p .. p + 7
    for (std::int64_t l = 0; l < lanes; ++l) {
      float* xl = x + l * plane + p;
      if (count == kLanes) {
        _mm256_storeu_ps(xl, r[l]);
      } else {
        alignas(32) float v[kLanes];
        _mm256_store_ps(v, r[l]);
        std::copy_n(v, count, xl);
      }
    }
  }
}

float* pack_taps(const Conv2dShape& s, const float* w, const float* bias, float* packed) {
  const std::int64_t c = s.c_in, taps = s.kh * s.kw, stride = taps + 1;
  const std::int64_t blocks = ceil_div(c, kLanes);
  std::fill_n(packed, blocks * stride * kLanes, 0.0f);
  for (std::int64_t ch = 0; ch < c; ++ch) {
    float* block = packed + ch / kLanes * stride * kLanes + ch % kLanes;
    for (std::int64_t t = 0; t < taps; ++t) block[t * kLanes] = w[ch * taps + t];
    if (bias) block[taps * kLanes] = bias[ch];
  }
  return packed;
}

}  // namespace shrink::kernels::cpu::depthwise_blocks
