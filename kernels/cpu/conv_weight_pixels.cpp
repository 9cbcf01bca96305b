// Backward-weight with output pixels as the lanes (kernels/cpu/conv_weight_pixels.h).
#include "kernels/cpu/conv_weight_pixels.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/conv_padded.h"
#include "kernels/cpu/lane_mask.h"
#include "kernels/cpu/tiling.h"

namespace shrink::kernels::cpu {
namespace {

using namespace conv_padded;

constexpr int kTaps = 4;      // taps per tile
constexpr int kChannels = 3;  // output channels per tile: 12 sums + 3 dy vectors + 1 input vector = 16 ymm
constexpr std::int64_t kTileFloats = kTaps * kChannels * kRun;

thread_local AlignedBuffer t_images;  // every padded image (calling thread)
thread_local AlignedBuffer t_sums;    // every tile's vector sums (calling thread)

// sums[(t kChannels + c) kRun + lane] += over one image's output pixels of input tap t times dy
// channel c, lane = pixel % 8 within each row's runs. `image` is the image's group planes in the
// Padded layout, `dy` channel 0 of the tile (channel c at c p). The sums stay in registers for the
// image and in memory between images, which changes no bit.
template <int R, int C>
void weight_tile(const Conv2dShape& s, const Padded& pad, const float* image, const std::int64_t* off,
                 const float* dy, std::int64_t p, float* sums) {
  const std::int64_t oh = s.out_h(), ow = s.out_w(), full = ow / kRun * kRun;
  const __m256i tail = first_lanes(ow - full);
  __m256 acc[R][C];
  for (int t = 0; t < R; ++t)
    for (int c = 0; c < C; ++c) acc[t][c] = _mm256_load_ps(sums + (t * kChannels + c) * kRun);
  for (std::int64_t i = 0; i < oh; ++i) {
    const float* row = image + i * s.stride_h * pad.wq;
    const float* d = dy + i * ow;
    for (std::int64_t j = 0; j < full; j += kRun) {
      __m256 g[C];
      for (int c = 0; c < C; ++c) g[c] = _mm256_loadu_ps(d + c * p + j);
      for (int t = 0; t < R; ++t) {
        const __m256 v = _mm256_loadu_ps(row + off[t] + j);
        for (int c = 0; c < C; ++c) acc[t][c] = _mm256_fmadd_ps(v, g[c], acc[t][c]);
      }
    }
    if (full < ow) {  // masked: no load passes the last row of an image read in place
      __m256 g[C];
      for (int c = 0; c < C; ++c) g[c] = _mm256_maskload_ps(d + c * p + full, tail);
      for (int t = 0; t < R; ++t) {
        const __m256 v = _mm256_maskload_ps(row + off[t] + full, tail);
        for (int c = 0; c < C; ++c) acc[t][c] = _mm256_fmadd_ps(v, g[c], acc[t][c]);
      }
    }
  }
  for (int t = 0; t < R; ++t)
    for (int c = 0; c < C; ++c) _mm256_store_ps(sums + (t * kChannels + c) * kRun, acc[t][c]);
}

using WeightTile = void (*)(const Conv2dShape&, const Padded&, const float*, const std::int64_t*, const float*,
                            std::int64_t, float*);
constexpr WeightTile kWeightTile[kTaps][kChannels] = {
    {weight_tile<1, 1>, weight_tile<1, 2>, weight_tile<1, 3>},
    {weight_tile<2, 1>, weight_tile<2, 2>, weight_tile<2, 3>},
    {weight_tile<3, 1>, weight_tile<3, 2>, weight_tile<3, 3>},
    {weight_tile<4, 1>, weight_tile<4, 2>, weight_tile<4, 3>}};

}  // namespace

bool weight_grad_pixel_lanes_preferred(const Conv2dShape& s) {
  // Measured against conv_direct.h's backward-weight (batch 64, 1 and 2 threads, the lower of
  // the two ratios): at most 9 taps (k = c_in kh kw), which leave the 16-channel kernel few tiles
  // of few taps: a 3x3 kernel over one input channel (32x32: 1 -> 8 3.3x, 1 -> 16 1.35x, 1 -> 32
  // 1.65x, 1 -> 64 1.5x; 28x28 1 -> 16 0.78x on one thread, 1.12x on two; 3 -> 16 0.9x), a 1x1
  // layer of up to 9 inputs (8 -> 64 on 32x32 2x, 8 -> 48 on 16x16 1.46x); a plain 1x1
  // convolution, its image one row of pixels (8 -> 8 on 32x32 4.5x, 32 -> 8 on 8x8 1.6x); and
  // output channels that fill 16-channel panels badly on rows of whole runs: 32 pixels wide
  // (16 -> 8 1.1x, 8 -> 8 1.3x, 16 -> 12 1.06x, 8 -> 24 1.09x), 16 wide up to 8 channels (8 -> 8
  // 1.14x; 24 -> 24 0.8x). Not on shorter or ragged rows (8x8 8 -> 8 0.92x, 14x14 12 -> 12 0.6x,
  // 4x4 0.7x) nor at stride 2 (16 -> 8 on 16x16 0.74x).
  const std::int64_t cog = s.c_out / s.groups, k = s.c_in / s.groups * s.kh * s.kw, ow = s.out_w();
  if (k <= 9) return true;
  if (cog % 16 == 0 || cog > 32) return false;
  if (is_plain_pointwise(s)) return true;
  return s.stride_w == 1 && ow % kRun == 0 && (ow >= 32 || (ow >= 16 && cog <= 8));
}

void conv2d_backward_weight_pixel_lanes(const Conv2dShape& shape, const float* x, const float* dy, float* dw) {
  const float* sub = nullptr;
  if (const auto t = subsample_pointwise(shape, x, sub)) return conv2d_backward_weight_pixel_lanes(*t, sub, dy, dw);
  const Conv2dShape s = runs_as_one_row(shape) ? as_one_row(shape) : shape;
  const std::int64_t cig = s.c_in / s.groups, cog = s.c_out / s.groups;
  const std::int64_t k = cig * s.kh * s.kw, p = s.out_h() * s.out_w();
  const Padded pad(s);
  const std::vector<std::int64_t> off = tap_offsets(s, pad, cig);
  const bool in_place = is_plain_pointwise(s);  // the image is already in the Padded layout
  const std::int64_t image_floats = in_place ? s.c_in * s.h * s.w : pad.image(s.c_in);
  float* const copies = in_place ? nullptr : t_images.get(std::max<std::int64_t>(s.n, 1) * image_floats);
  const float* const images = in_place ? x : copies;
  const bool parallel = !omp_in_parallel() && s.n * s.c_out * p * k > kConvParallelWork;
  if (!in_place) {
#pragma omp parallel for schedule(static) if (parallel && s.n > 1)
    for (std::int64_t img = 0; img < s.n; ++img)
      pad_image(s, pad, x + img * s.c_in * s.h * s.w, s.c_in, copies + img * image_floats);
  }
  // Tiles in (group, channel panel, tap panel) order: a thread's consecutive tiles share dy
  // channels, and every tile of an image reads the same padded image, both kept in L2 while the
  // thread passes over its tiles image by image.
  const std::int64_t tap_panels = ceil_div(k, kTaps), channel_panels = ceil_div(cog, kChannels);
  const std::int64_t tiles = s.groups * channel_panels * tap_panels;
  float* const sums = t_sums.get(std::max<std::int64_t>(tiles, 1) * kTileFloats);
#pragma omp parallel if (parallel && tiles > 1)
  {
    // Fixed tiles per thread: each element of dW is summed by one thread, in image order.
    const std::int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const std::int64_t tile0 = tiles * t / threads, tile1 = tiles * (t + 1) / threads;
    std::fill(sums + tile0 * kTileFloats, sums + tile1 * kTileFloats, 0.0f);
    struct Where {
      std::int64_t g, c0, taps, channels, t0;
    };
    auto where = [&](std::int64_t tile) {
      const std::int64_t g = tile / (channel_panels * tap_panels);
      const std::int64_t c0 = tile % (channel_panels * tap_panels) / tap_panels * kChannels;
      const std::int64_t t0 = tile % tap_panels * kTaps;
      return Where{g, c0, std::min<std::int64_t>(kTaps, k - t0), std::min<std::int64_t>(kChannels, cog - c0), t0};
    };
    for (std::int64_t img = 0; img < s.n; ++img)
      for (std::int64_t tile = tile0; tile < tile1; ++tile) {
        const Where w = where(tile);
        kWeightTile[w.taps - 1][w.channels - 1](s, pad, images + img * image_floats + w.g * cig * pad.plane(),
                                                off.data() + w.t0, dy + (img * s.c_out + w.g * cog + w.c0) * p, p,
                                                sums + tile * kTileFloats);
      }
    // Each sum's lanes added in lane order: dW[o, tap].
    for (std::int64_t tile = tile0; tile < tile1; ++tile) {
      const Where w = where(tile);
      for (std::int64_t r = 0; r < w.taps; ++r)
        for (std::int64_t c = 0; c < w.channels; ++c) {
          const float* lanes = sums + tile * kTileFloats + (r * kChannels + c) * kRun;
          float total = lanes[0];
          for (std::int64_t l = 1; l < kRun; ++l) total += lanes[l];
          dw[(w.g * cog + w.c0 + c) * k + w.t0 + r] = total;
        }
    }
  }
}

}  // namespace shrink::kernels::cpu
