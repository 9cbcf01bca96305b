// The 8-channel blocks the blocked depthwise kernels work on (conv_depthwise_blocked.h): a
// vector holds one pixel of 8 channels, as in channels-last layouts. Each block of 8 planes is
// transposed into a zero-bordered channels-last copy (hp x wp pixels of 8 floats), where every
// kernel tap of every output pixel is one full-width load at a fixed step, whatever the map's
// width, stride or dilation. Internal to kernels/cpu.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu::depthwise_blocks {

inline constexpr std::int64_t kLanes = 8;  // channels per vector, and pixels per transpose

// Pixel offsets, in floats, into the channels-last padded copy (wp pixels a row, 8 floats each).
struct Offsets {
  std::vector<std::int64_t> in;   // input pixel p (row-major in its plane) -> its interior position
  std::vector<std::int64_t> out;  // output pixel p -> its first tap's input position
  std::vector<std::int64_t> tap;  // tap (r, q) -> its step from that position
};
Offsets offsets_of(const Conv2dShape& s);

// Floats of one block's padded copy: (h + 2 pad_h) (w + 2 pad_w) pixels of 8.
std::int64_t copy_floats(const Conv2dShape& s);

// Eight floats of a plane from pixel p (the `count` < 8 left at a plane's end are padded with zeros).
inline __m256 load_pixels(const float* src, std::int64_t p, std::int64_t count) {
  if (count == kLanes) return _mm256_loadu_ps(src + p);
  alignas(32) float tail[kLanes] = {};
  for (std::int64_t k = 0; k < count; ++k) tail[k] = src[p + k];
  return _mm256_load_ps(tail);
}

// Pixels [p, p + count) of `lanes` planes `plane` floats apart (the other lanes read as zeros),
// transposed: r[k] holds pixel p + k's 8 channels.
void load_block_pixels(const float* planes, std::int64_t plane, std::int64_t lanes, std::int64_t p,
                       std::int64_t count, __m256 r[kLanes]);

// The block's planes (lanes of them; the rest read as zeros) into `copy`'s interior.
void copy_block(const float* x, std::int64_t plane, std::int64_t lanes, const Offsets& o, float* copy);
// The inverse: `copy`'s interior back into the block's `lanes` planes.
void store_block(const float* copy, const Offsets& o, std::int64_t lanes, std::int64_t plane, float* x);

// Every block's taps and bias as 8-channel vectors (zero lanes past c; a null bias packs
// zeros): block b's tap t at (b (taps + 1) + t) 8, its bias after its taps. Returns `packed`.
float* pack_taps(const Conv2dShape& s, const float* w, const float* bias, float* packed);

}  // namespace shrink::kernels::cpu::depthwise_blocks
