// The padded-image layout the direct convolution kernels read (conv_direct.h and
// conv_weight_pixels.h): each image copied once, zero-padded, its columns split by phase
// modulo the stride, so that for every kernel tap the inputs that consecutive output pixels of
// a row meet are consecutive floats at a fixed offset from the pixels' receptive-field corner.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu::conv_padded {

inline constexpr std::int64_t kRun = 8;               // pixels per vector load (one ymm)
inline constexpr std::int64_t kSlack = 2 * kRun;      // floats readable past a padded image

// The zero-padded planes of one image with their columns split by phase modulo the stride:
// padded column u of row v of plane c sits at ((c sw + u % sw) hp + v) wq + u / sw. Output
// pixel j meets padded column j sw + q dw at phase (q dw) % sw, position j + (q dw) / sw: one
// step per pixel whatever the stride, so 8 pixels are 8 consecutive floats. kSlack zeros follow
// the last plane (a run's load may pass a row's end).
struct Padded {
  std::int64_t hp, wp, sw, wq;
  explicit Padded(const Conv2dShape& s)
      : hp(s.h + 2 * s.pad_h), wp(s.w + 2 * s.pad_w), sw(s.stride_w), wq((wp + sw - 1) / sw) {}
  std::int64_t plane() const { return sw * hp * wq; }  // one channel, every phase
  std::int64_t image(std::int64_t channels) const { return channels * plane() + kSlack; }
};

// Writes `channels` planes of x (c, h, w) into dst in the Padded layout, slack included.
void pad_image(const Conv2dShape& s, const Padded& p, const float* x, std::int64_t channels, float* dst);

// off[k] for tap k = (c, r, q) of one group: where that tap's input sits relative to the
// receptive field's top-left corner (phase 0, row i sh, position j for output pixel (i, j)).
std::vector<std::int64_t> tap_offsets(const Conv2dShape& s, const Padded& p, std::int64_t cig);

// A 1x1 unpadded convolution at stride > 1 reads one pixel in sh sw: it is the stride-1
// convolution of those pixels, gathered (into a thread_local buffer) as (n, c, out_h, out_w),
// instead of a padded copy of every pixel. Returns the shape to run on `sub`, or nullopt for
// other shapes.
std::optional<Conv2dShape> subsample_pointwise(const Conv2dShape& s, const float* x, const float*& sub);
// True for the shapes subsample_pointwise takes (1x1, unpadded, a stride above 1); then
// pointwise_subsampled(s) is the stride-1 shape it returns.
bool is_strided_pointwise(const Conv2dShape& s);
Conv2dShape pointwise_subsampled(const Conv2dShape& s);
// One image's pixels that a strided pointwise `s` reads, as (c_in, out_h, out_w) at dst, then
// kSlack zeros: the Padded layout of as_one_row(pointwise_subsampled(s)).
void subsample_image(const Conv2dShape& s, const float* x, float* dst);

// A 1x1 unpadded stride-1 convolution: Padded(s) is the image's own layout, each plane the run
// of pixels its tap meets. Backward-weight reads the images in place; the copy had cost as much
// memory traffic as the multiply-adds of a narrow layer, whose k = c_in is small. Forward keeps
// its copy: read in place, the c_in planes of a tile were more streams than the hardware
// prefetcher follows, and the 24 -> 144 expansion of MobileNetV2 ran 1.1-1.4x slower
// (bench_conv, with and without software prefetch).
bool is_plain_pointwise(const Conv2dShape& s);
// A plain pointwise convolution's image viewed as one row of h w pixels, so runs fill their
// 8 lanes across what had been rows (a 4x4 map had filled half of them row by row).
bool runs_as_one_row(const Conv2dShape& s);
Conv2dShape as_one_row(const Conv2dShape& s);

}  // namespace shrink::kernels::cpu::conv_padded
