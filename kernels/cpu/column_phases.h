// Splits image rows into their column phases modulo a stride, so that a strided convolution
// reads consecutive floats: padded column u goes to phase u % stride, position u / stride, and
// output pixel j's tap at padded column j stride + d then sits at phase d % stride, position
// j + d / stride (one step per pixel). Used by the direct kernels' padded copies and the
// depthwise kernel.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace shrink::kernels::cpu {

// 16 consecutive floats at src split into their 8 even-indexed and 8 odd-indexed ones, in order.
inline void split_even_odd16(const float* src, __m256& even, __m256& odd) {
  const __m256 lo = _mm256_loadu_ps(src), hi = _mm256_loadu_ps(src + 8);
  const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  even = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)), order);  // lo0 lo2 hi0 hi2 | ...
  odd = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1)), order);
}

// Row `src` (w values, column j at padded column u = j + pad) into the phase rows at
// dst + phase * phase_stride, position u / stride; positions outside the row are left as they are.
template <class T>
inline void split_row_by_phase(const T* src, std::int64_t w, std::int64_t pad, std::int64_t stride, T* dst,
                               std::int64_t phase_stride) {
  std::int64_t j = 0;
  if (stride == 1) {
    if constexpr (std::is_same_v<T, float>)  // inline: rows are short, a memmove call per row cost more
      for (; j + 8 <= w; j += 8) _mm256_storeu_ps(dst + pad + j, _mm256_loadu_ps(src + j));
    std::copy(src + j, src + w, dst + pad + j);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    if (stride == 2) {  // 16 columns at a time into their 8 even and 8 odd ones
      const std::int64_t pe = pad % 2, po = 1 - pe;  // phases of columns j even / odd
      float* even = dst + pe * phase_stride;
      float* odd = dst + po * phase_stride;
      for (; j + 16 <= w; j += 16) {
        __m256 e, o;
        split_even_odd16(src + j, e, o);
        _mm256_storeu_ps(even + (j + pad) / 2, e);
        _mm256_storeu_ps(odd + (j + 1 + pad) / 2, o);
      }
      for (; j + 8 <= w; j += 8) {  // 8 columns into 4 even and 4 odd (rows of 8 and 24)
        const __m256 v = _mm256_permutevar8x32_ps(_mm256_loadu_ps(src + j), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
        _mm_storeu_ps(even + (j + pad) / 2, _mm256_castps256_ps128(v));
        _mm_storeu_ps(odd + (j + 1 + pad) / 2, _mm256_extractf128_ps(v, 1));
      }
    }
  }
  if (stride == 2) {  // a known stride: shifts and masks, where u % stride and u / stride divide
    for (; j < w; ++j) dst[((j + pad) & 1) * phase_stride + ((j + pad) >> 1)] = src[j];
    return;
  }
  // The rest phase by phase: no division per column.
  for (std::int64_t phase = 0; phase < stride && j < w; ++phase) {
    const std::int64_t first = j + (phase - (j + pad) % stride + stride) % stride;  // (first + pad) % stride == phase
    T* d = dst + phase * phase_stride + (first + pad) / stride;
    for (std::int64_t c = first; c < w; c += stride) *d++ = src[c];
  }
}

}  // namespace shrink::kernels::cpu
