// Lane masks for AVX2 masked loads and stores (_mm256_maskload_ps / _mm256_maskstore_ps): a
// lane is on when its 32-bit element is all ones.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace shrink::kernels::cpu {

// Lanes l with lo <= l < hi on (either bound may lie outside 0..8).
inline __m256i lanes_between(std::int64_t lo, std::int64_t hi) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i below_lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(lo)), lane);
  const __m256i below_hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hi)), lane);
  return _mm256_andnot_si256(below_lo, below_hi);
}

// Lanes [0, n) on, n in 0..8.
inline __m256i first_lanes(std::int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace shrink::kernels::cpu
