#include "kernels/cpu/conv_depthwise_3x3.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/conv_algorithm.h"
#include "kernels/cpu/conv_epilogue.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/lane_mask.h"

namespace shrink::kernels::cpu {

namespace {

constexpr std::int64_t kLanes = 8;  // output columns per vector

// One (n, c) plane: x (h, w) -> y (out_h, out_w), with taps t[9] (row-major) and bias b; res is
// the residual at y's offset when Add.
template <bool Add, EpilogueAct Act>
void plane_3x3(const Conv2dShape& s, const float* x, const float* t, float b, const float* res, float* y,
               const float* next) {
  const std::int64_t h = s.h, w = s.w, oh = s.out_h(), ow = s.out_w();
  __m256 tap[9];
  for (int i = 0; i < 9; ++i) tap[i] = _mm256_set1_ps(t[i]);
  const __m256 bias = _mm256_set1_ps(b), zero = _mm256_setzero_ps();
  for (std::int64_t j = 0; j < ow; j += kLanes) {
    const std::int64_t n = std::min(kLanes, ow - j), first = j - s.pad_w;  // input column of lane 0, tap column 0
    // Inside: every lane's 3 columns are in the row (plain loads); else tap column q's lane l
    // reads column first + q + l only where that is in [0, w).
    const bool inside = first >= 0 && first + kLanes + 1 < w;
    __m256i in_row[3];
    for (int q = 0; q < 3; ++q) in_row[q] = lanes_between(-(first + q), w - (first + q));
    const __m256i stored = first_lanes(n);
    // Input row r at its 3 column shifts; rows outside the image are zeros.
    auto load_row = [&](std::int64_t r, __m256& v0, __m256& v1, __m256& v2) {
      if (r < 0 || r >= h) {
        v0 = v1 = v2 = zero;
        return;
      }
      if (next && j == 0)  // the first sweep fetches the next plane's row r, a line at a time
        for (std::int64_t k = 0; k < w; k += 16) _mm_prefetch(reinterpret_cast<const char*>(next + r * w + k), _MM_HINT_T0);
      const float* src = x + r * w + first;
      if (inside) {
        v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 1), v2 = _mm256_loadu_ps(src + 2);
      } else {
        v0 = _mm256_maskload_ps(src, in_row[0]);
        v1 = _mm256_maskload_ps(src + 1, in_row[1]);
        v2 = _mm256_maskload_ps(src + 2, in_row[2]);
      }
    };
    auto store = [&](std::int64_t i, __m256 v) {
      float* dst = y + i * ow + j;
      if (n == kLanes) {
        _mm256_storeu_ps(dst, epilogue8<Add, Act>(v, Add ? _mm256_loadu_ps(res + i * ow + j) : zero));
      } else {
        _mm256_maskstore_ps(dst, stored,
                            epilogue8<Add, Act>(v, Add ? _mm256_maskload_ps(res + i * ow + j, stored) : zero));
      }
    };
    // Step u reads padded row u (input row u - pad_h): tap row 0 of output row u (started from
    // the bias), tap row 1 of output row u - 1, tap row 2 of output row u - 2, which is then
    // finished. Output row i's sum lives in acc[i % 3]; the caller rotates the names.
    auto step = [&](std::int64_t u, __m256& start, __m256& mid, __m256& end) {
      __m256 v0, v1, v2;
      load_row(u - s.pad_h, v0, v1, v2);
      if (u >= 2) {
        end = _mm256_fmadd_ps(tap[6], v0, end);
        end = _mm256_fmadd_ps(tap[7], v1, end);
        end = _mm256_fmadd_ps(tap[8], v2, end);
        store(u - 2, end);
      }
      if (u >= 1 && u - 1 < oh) {
        mid = _mm256_fmadd_ps(tap[3], v0, mid);
        mid = _mm256_fmadd_ps(tap[4], v1, mid);
        mid = _mm256_fmadd_ps(tap[5], v2, mid);
      }
      if (u < oh) {
        start = _mm256_fmadd_ps(tap[0], v0, bias);
        start = _mm256_fmadd_ps(tap[1], v1, start);
        start = _mm256_fmadd_ps(tap[2], v2, start);
      }
    };
    __m256 a0 = zero, a1 = zero, a2 = zero;
    const std::int64_t steps = oh + 2;  // padded rows: stride 1, 3 tap rows
    for (std::int64_t u = 0; u < steps; u += 3) {
      step(u, a0, a2, a1);
      if (u + 1 < steps) step(u + 1, a1, a0, a2);
      if (u + 2 < steps) step(u + 2, a2, a1, a0);
    }
  }
}

}  // namespace

bool depthwise_3x3_rows_applies(const Conv2dShape& s) {
  return is_depthwise(s) && s.kh == 3 && s.kw == 3 && s.stride_h == 1 &&
         s.stride_w == 1 && s.dilation_h == 1 && s.dilation_w == 1 && s.pad_h >= 0 && s.pad_h <= 1 &&
         s.pad_w >= 0 && s.pad_w <= 1 && s.out_h() > 0 && s.out_w() > 0;
}

void conv2d_forward_depthwise_3x3(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                                  const ConvEpilogue& post, float* y) {
  const std::int64_t planes = s.n * s.c_in, in_plane = s.h * s.w, out_plane = s.out_h() * s.out_w();
  with_epilogue(post, [&]<bool Add, EpilogueAct Act>() {
#pragma omp parallel for schedule(static) if (planes > 1 && planes * out_plane * 9 > kParallelGrain)
    for (std::int64_t plane = 0; plane < planes; ++plane) {
      const std::int64_t c = plane % s.c_in;
      plane_3x3<Add, Act>(s, x + plane * in_plane, w + c * 9, bias ? bias[c] : 0.0f,
                          residual_at<float>(post, plane * out_plane), y + plane * out_plane,
                          plane + 1 == planes ? nullptr : x + (plane + 1) * in_plane);
    }
  });
}

}  // namespace shrink::kernels::cpu
