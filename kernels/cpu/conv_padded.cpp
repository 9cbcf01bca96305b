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

// Plane `src` (s.h x s.w) at the pixels a strided pointwise s reads, into dst (out_h x out_w).
void subsample_plane(const Conv2dShape& s, const float* src_plane, float* dst) {
  const std::int64_t oh = s.out_h(), ow = s.out_w();
  for (std::int64_t i = 0; i < oh; ++i) {
    const float* src = src_plane + i * s.stride_h * s.w;
    float* out = dst + i * ow;
    std::int64_t j = 0;
    if (s.stride_w == 2)  // 8 even columns of 16 a step (the loads stay inside the row)
      for (; 2 * j + 16 <= s.w; j += 8) {
        __m256 even, odd;  // odd unused: the compiler drops its shuffle
        split_even_odd16(src + 2 * j, even, odd);
        _mm256_storeu_ps(out + j, even);
      }
    for (; j < ow; ++j) out[j] = src[j * s.stride_w];
  }
}

thread_local AlignedBuffer t_subsampled;

}  // namespace

bool is_strided_pointwise(const Conv2dShape& s) {
  return s.kh == 1 && s.kw == 1 && s.pad_h == 0 && s.pad_w == 0 && (s.stride_h != 1 || s.stride_w != 1);
}

Conv2dShape pointwise_subsampled(const Conv2dShape& s) {
  Conv2dShape t = s;
  t.h = s.out_h();
  t.w = s.out_w();
  t.stride_h = t.stride_w = 1;
  return t;
}

void subsample_image(const Conv2dShape& s, const float* x, float* dst) {
  const std::int64_t plane = s.out_h() * s.out_w();
  for (std::int64_t c = 0; c < s.c_in; ++c) subsample_plane(s, x + c * s.h * s.w, dst + c * plane);
  std::fill_n(dst + s.c_in * plane, kSlack, 0.0f);
}

std::optional<Conv2dShape> subsample_pointwise(const Conv2dShape& s, const float* x, const float*& sub) {
  if (!is_strided_pointwise(s)) return std::nullopt;
  const Conv2dShape t = pointwise_subsampled(s);
  const std::int64_t plane = t.h * t.w, planes = s.n * s.c_in;
  float* dst = t_subsampled.get(std::max<std::int64_t>(planes * plane, 1));
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && planes * plane > (1 << 15))
  for (std::int64_t c = 0; c < planes; ++c) subsample_plane(s, x + c * s.h * s.w, dst + c * plane);
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
