#include "kernels/cpu/conv_depthwise_blocked.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/conv_algorithm.h"
#include "kernels/cpu/conv_epilogue.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/depthwise_blocks.h"
#include "kernels/cpu/simd_transpose.h"
#include "kernels/cpu/tiling.h"

namespace shrink::kernels::cpu {

namespace {

using namespace depthwise_blocks;

// Widest output row sent here. bench_conv, 2 threads, MobileNetV2's 3x3 layers (batch 32), rows
// vs blocks: 8x8 381 vs 235 us, 8x8 -> 4x4 at stride 2 1013 vs 105 us, 4x4 695 vs 139 us; at
// 16x16 536 vs 517 us and 32x32 1.71 vs 1.70 ms (even: both stream memory), and 32x32 -> 16x16
// at stride 2 592 vs 747 us (the rows' column phases win). Wider rows stay with the row loops
// (or, 3x3 at stride 1, the rolling row sums of conv_depthwise_3x3.h).
constexpr std::int64_t kMaxBlockedWidth = 8;

thread_local AlignedBuffer t_block;  // one block's channels-last padded copy (each worker thread)
thread_local AlignedBuffer t_taps;   // every block's taps and bias as vectors (calling thread)

// Output pixels [p, p + count) of the block's planes: 8 pixels' sums (in the row loops' order),
// transposed to 8 channels' runs of pixels, finished and stored.
template <bool Add, EpilogueAct Act>
void block_pixels(const float* copy, const Offsets& o, const float* taps, __m256 bias, std::int64_t p,
                  std::int64_t count, std::int64_t lanes, std::int64_t out_plane, const float* residual, float* y) {
  const float* at[kLanes];
  for (std::int64_t k = 0; k < kLanes; ++k)  // a missing pixel repeats the last one: its loads stay inside
    at[k] = copy + o.out[static_cast<std::size_t>(p + std::min(k, count - 1))];
  __m256 acc[kLanes];
  for (std::int64_t k = 0; k < kLanes; ++k) acc[k] = bias;
  const std::int64_t n_taps = static_cast<std::int64_t>(o.tap.size());
  for (std::int64_t t = 0; t < n_taps; ++t) {
    const __m256 wt = _mm256_load_ps(taps + t * kLanes);
    const std::int64_t step = o.tap[static_cast<std::size_t>(t)];
#pragma GCC unroll 8
    for (std::int64_t k = 0; k < kLanes; ++k) acc[k] = _mm256_fmadd_ps(wt, _mm256_load_ps(at[k] + step), acc[k]);
  }
  transpose8(acc);  // acc[l]: channel l's pixels p .. p + 7
  for (std::int64_t l = 0; l < lanes; ++l) {
    float* yl = y + l * out_plane + p;
    const float* rl = Add ? residual + l * out_plane + p : nullptr;
    if (count == kLanes) {
      _mm256_storeu_ps(yl, epilogue8<Add, Act>(acc[l], Add ? _mm256_loadu_ps(rl) : _mm256_setzero_ps()));
    } else {
      alignas(32) float sums[kLanes];
      _mm256_store_ps(sums, acc[l]);
      for (std::int64_t k = 0; k < count; ++k) yl[k] = epilogue1<Add, Act>(sums[k], Add ? rl[k] : 0.0f);
    }
  }
}

}  // namespace

bool depthwise_blocked_preferred(const Conv2dShape& s) {
  return is_depthwise(s) && s.out_w() <= kMaxBlockedWidth && s.out_h() > 0 && s.out_w() > 0;
}

void conv2d_forward_depthwise_blocked(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                                      const ConvEpilogue& post, float* y) {
  const std::int64_t c = s.c_in, taps = s.kh * s.kw, oh = s.out_h(), ow = s.out_w();
  const std::int64_t in_plane = s.h * s.w, out_plane = oh * ow;
  const std::int64_t blocks = ceil_div(c, kLanes), items = s.n * blocks;
  const Offsets o = offsets_of(s);
  // Block b's tap t at (b (taps + 1) + t) 8, its bias after its taps.
  const float* const packed = pack_taps(s, w, bias, t_taps.get(blocks * (taps + 1) * kLanes));
  const bool parallel = items > 1 && s.n * c * out_plane * taps > kParallelGrain;
#pragma omp parallel if (parallel)
  {
    // Zeroed once: every block writes the same interior positions, so the border stays zero.
    float* const copy = t_block.get(copy_floats(s));
    std::fill_n(copy, copy_floats(s), 0.0f);
#pragma omp for schedule(static)
    for (std::int64_t item = 0; item < items; ++item) with_epilogue(post, [&]<bool Add, EpilogueAct Act>() {
      const std::int64_t img = item / blocks, b = item % blocks, c0 = b * kLanes;
      const std::int64_t lanes = std::min(kLanes, c - c0);
      copy_block(x + (img * c + c0) * in_plane, in_plane, lanes, o, copy);
      const float* taps_b = packed + b * (taps + 1) * kLanes;
      const __m256 bias_b = _mm256_load_ps(taps_b + taps * kLanes);
      const std::int64_t first = (img * c + c0) * out_plane;  // the block's first output plane
      const float* residual = Add ? residual_at<float>(post, first) : nullptr;
      for (std::int64_t p = 0; p < out_plane; p += kLanes)
        block_pixels<Add, Act>(copy, o, taps_b, bias_b, p, std::min(kLanes, out_plane - p), lanes, out_plane,
                               residual, y + first);
    });
  }
}

}  // namespace shrink::kernels::cpu
