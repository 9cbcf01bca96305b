// The direct kernels' padded-image layout (kernels/cpu/conv_padded.h).
#include "kernels/cpu/conv_padded.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/column_phases.h"

namespace shrink::kernels::cpu::conv_padded {

void pad_image(const Conv2dShape& s, const Padded& p, const float* x, std::int64_t channels, float* dst) {
  const bool rows_cover_planes = s.pad_h == 0 && s.pad_w == 0 && p.sw == 1;  // then only the slack is zero
  std::fill(rows_cover_planes ? dst + channels * p.plane() : dst, dst + p.image(channels), 0.0f);
  for (std::int64_t c = 0; c < channels; ++c)
    for (std::int64_t i = 0; i < s.h; ++i)  // row i + pad_h of phase 0 of plane c
      split_row_by_phase(x + (c * s.h + i) * s.w, s.w, s.pad_w, p.sw, dst + (c * p.sw * p.hp + i + s.pad_h) * p.wq,
                         p.hp * p.wq);
}

std::vector<std::int64_t> tap_offsets(const Conv2dShape& s, const Padded& p, std::int64_t cig) {
  std::vector<std::int64_t> off;
  for (std::int64_t c = 0; c < cig; ++c)
    for (std::int64_t r = 0; r < s.kh; ++r)
      for (std::int64_t q = 0; q < s.kw; ++q) {
        const std::int64_t u = q * s.dilation_w;
        off.push_back(((c * p.sw + u % p.sw) * p.hp + r * s.dilation_h) * p.wq + u / p.sw);
      }
  return off;
}

namespace {
thread_local AlignedBuffer t_subsampled;
}  // namespace

std::optional<Conv2dShape> subsample_pointwise(const Conv2dShape& s, const float* x, const float*& sub) {
  if (s.kh != 1 || s.kw != 1 || s.pad_h != 0 || s.pad_w != 0 || (s.stride_h == 1 && s.stride_w == 1))
    return std::nullopt;
  Conv2dShape t = s;
  t.h = s.out_h();
  t.w = s.out_w();
  t.stride_h = t.stride_w = 1;
  float* dst = t_subsampled.get(std::max<std::int64_t>(s.n * s.c_in * t.h * t.w, 1));
  const std::int64_t planes = s.n * s.c_in;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && planes * t.h * t.w > (1 << 15))
  for (std::int64_t plane = 0; plane < planes; ++plane)
    for (std::int64_t i = 0; i < t.h; ++i) {
      const float* src = x + (plane * s.h + i * s.stride_h) * s.w;
      float* out = dst + (plane * t.h + i) * t.w;
      std::int64_t j = 0;
      if (s.stride_w == 2)  // 8 even columns of 16 a step (the loads stay inside the row)
        for (; 2 * j + 16 <= s.w; j += 8) {
          const __m256 lo = _mm256_loadu_ps(src + 2 * j), hi = _mm256_loadu_ps(src + 2 * j + 8);
          const __m256 even = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));  // lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6
          _mm256_storeu_ps(out + j, _mm256_permutevar8x32_ps(even, _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7)));
        }
      for (; j < t.w; ++j) out[j] = src[j * s.stride_w];
    }
  sub = dst;
  return t;
}

bool is_plain_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.pad_h == 0 && s.pad_w == 0 && s.stride_h == 1 && s.stride_w == 1;
}

bool runs_as_one_row(const Conv2dShape& s) { return is_plain_pointwise(s) && s.h != 1; }

Conv2dShape as_one_row(const Conv2dShape& s) {
  Conv2dShape t = s;
  t.w = s.h * s.w;
  t.h = 1;
  return t;
}

}  // namespace shrink::kernels::cpu::conv_padded
