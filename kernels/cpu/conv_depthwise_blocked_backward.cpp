// Depthwise backward-input and backward-weight on blocks of 8 channels
// (kernels/cpu/conv_depthwise_blocked.h).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/conv_depthwise_blocked.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/depthwise_blocks.h"
#include "kernels/cpu/tiling.h"

namespace shrink::kernels::cpu {

namespace {

using namespace depthwise_blocks;

constexpr int kTapChunk = 9;  // tap sums held in registers at once (3x3: one chunk)

thread_local AlignedBuffer t_copy;   // one block's channels-last padded copy (each worker thread)
thread_local AlignedBuffer t_grads;  // one block's dy, channels-last (each worker thread)
thread_local AlignedBuffer t_taps;   // every block's taps (and a zero bias) as vectors (calling thread)
thread_local AlignedBuffer t_sums;   // one block's tap sums as vectors (each worker thread)

// Output pixels [p, p + count) of one block: each pixel's dy vector times each tap's weights,
// added to the tap's input in the padded copy.
void scatter_pixels(const float* dy, std::int64_t out_plane, std::int64_t lanes, const Offsets& o,
                    const float* taps, std::int64_t p, std::int64_t count, float* copy) {
  __m256 g[kLanes];
  load_block_pixels(dy, out_plane, lanes, p, count, g);
  const std::int64_t n_taps = static_cast<std::int64_t>(o.tap.size());
  for (std::int64_t k = 0; k < count; ++k) {
    float* at = copy + o.out[static_cast<std::size_t>(p + k)];
    for (std::int64_t t = 0; t < n_taps; ++t) {
      float* a = at + o.tap[static_cast<std::size_t>(t)];
      _mm256_store_ps(a, _mm256_fmadd_ps(_mm256_load_ps(taps + t * kLanes), g[k], _mm256_load_ps(a)));
    }
  }
}

// Taps [t0, t0 + NT) of one image: sums[t] += over its output pixels, in order, of dy(pixel)
// x(pixel's tap t), 8 channels a vector, in registers for the image.
template <int NT>
void tap_sums(const float* copy, const float* grads, const Offsets& o, std::int64_t t0, float* sums) {
  __m256 acc[NT];
  std::int64_t step[NT];
  for (int t = 0; t < NT; ++t) {
    acc[t] = _mm256_load_ps(sums + (t0 + t) * kLanes);
    step[t] = o.tap[static_cast<std::size_t>(t0 + t)];
  }
  const std::int64_t pixels = static_cast<std::int64_t>(o.out.size());
  for (std::int64_t p = 0; p < pixels; ++p) {
    const __m256 g = _mm256_load_ps(grads + p * kLanes);
    const float* at = copy + o.out[static_cast<std::size_t>(p)];
#pragma GCC unroll 9
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_fmadd_ps(g, _mm256_load_ps(at + step[t]), acc[t]);
  }
  for (int t = 0; t < NT; ++t) _mm256_store_ps(sums + (t0 + t) * kLanes, acc[t]);
}

template <int... N>
void tap_chunk(int nt, const float* copy, const float* grads, const Offsets& o, std::int64_t t0, float* sums,
               std::integer_sequence<int, N...>) {
  ((nt == N + 1 ? tap_sums<N + 1>(copy, grads, o, t0, sums) : void()), ...);
}

}  // namespace

void conv2d_backward_input_depthwise_blocked(const Conv2dShape& s, const float* w, const float* dy, float* dx) {
  const std::int64_t c = s.c_in, taps = s.kh * s.kw;
  const std::int64_t in_plane = s.h * s.w, out_plane = s.out_h() * s.out_w();
  const std::int64_t blocks = ceil_div(c, kLanes), items = s.n * blocks;
  const Offsets o = offsets_of(s);
  const float* const packed = pack_taps(s, w, nullptr, t_taps.get(blocks * (taps + 1) * kLanes));
  const bool parallel = items > 1 && s.n * c * out_plane * taps > kParallelGrain;
#pragma omp parallel if (parallel)
  {
    float* const copy = t_copy.get(copy_floats(s));
#pragma omp for schedule(static)
    for (std::int64_t item = 0; item < items; ++item) {
      const std::int64_t img = item / blocks, b = item % blocks, c0 = b * kLanes;
      const std::int64_t lanes = std::min(kLanes, c - c0);
      std::fill_n(copy, copy_floats(s), 0.0f);  // the scatter writes the border too
      const float* dy_b = dy + (img * c + c0) * out_plane;
      for (std::int64_t p = 0; p < out_plane; p += kLanes)
        scatter_pixels(dy_b, out_plane, lanes, o, packed + b * (taps + 1) * kLanes, p, std::min(kLanes, out_plane - p),
                       copy);
      store_block(copy, o, lanes, in_plane, dx + (img * c + c0) * in_plane);
    }
  }
}

void conv2d_backward_weight_depthwise_blocked(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const std::int64_t c = s.c_in, taps = s.kh * s.kw;
  const std::int64_t in_plane = s.h * s.w, out_plane = s.out_h() * s.out_w();
  const std::int64_t blocks = ceil_div(c, kLanes);
  const Offsets o = offsets_of(s);
  const bool parallel = blocks > 1 && s.n * c * out_plane * taps > kParallelGrain;
#pragma omp parallel if (parallel)
  {
    float* const copy = t_copy.get(copy_floats(s));
    float* const grads = t_grads.get(std::max<std::int64_t>(out_plane, 1) * kLanes);
    std::fill_n(copy, copy_floats(s), 0.0f);  // every image writes the same interior: the border stays zero
    float* const sums = t_sums.get(taps * kLanes);
#pragma omp for schedule(static)
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t c0 = b * kLanes, lanes = std::min(kLanes, c - c0);
      std::fill_n(sums, taps * kLanes, 0.0f);
      for (std::int64_t img = 0; img < s.n; ++img) {
        copy_block(x + (img * c + c0) * in_plane, in_plane, lanes, o, copy);
        const float* dy_b = dy + (img * c + c0) * out_plane;
        for (std::int64_t p = 0; p < out_plane; p += kLanes) {
          const std::int64_t count = std::min(kLanes, out_plane - p);
          __m256 g[kLanes];
          load_block_pixels(dy_b, out_plane, lanes, p, count, g);
          for (std::int64_t k = 0; k < count; ++k) _mm256_store_ps(grads + (p + k) * kLanes, g[k]);
        }
        for (std::int64_t t0 = 0; t0 < taps; t0 += kTapChunk)
          tap_chunk(static_cast<int>(std::min<std::int64_t>(kTapChunk, taps - t0)), copy, grads, o, t0, sums,
                    std::make_integer_sequence<int, kTapChunk>{});
      }
      for (std::int64_t l = 0; l < lanes; ++l)
        for (std::int64_t t = 0; t < taps; ++t)
          dw[(c0 + l) * taps + t] = sums[t * kLanes + l];
    }
  }
}

}  // namespace shrink::kernels::cpu
