// Packing for the sgemm driver in gemm.cpp. Packed panels are laid out in the exact order the
// micro-kernel reads them, so the kernel's loads are sequential and aligned.
#include <immintrin.h>

#include "kernels/cpu/gemm_detail.h"
#include "kernels/cpu/simd_transpose.h"

namespace shrink::kernels::cpu::gemm_detail {
namespace {

// Generic path for edge panels and leftover k: correct for any shape, used only on the fringe.
void pack_scalar(const float* src, std::int64_t ld, bool k_contiguous, std::int64_t width,
                 std::int64_t valid, std::int64_t p_begin, std::int64_t kc, float alpha,
                 float* dst) {
  for (std::int64_t p = p_begin; p < kc; ++p) {
    float* d = dst + p * width;
    for (std::int64_t i = 0; i < valid; ++i)
      d[i] = alpha * (k_contiguous ? src[i * ld + p] : src[p * ld + i]);
    for (std::int64_t i = valid; i < width; ++i) d[i] = 0.0f;
  }
}

}  // namespace

void pack_panel_a(const float* src, std::int64_t ld, bool k_contiguous, std::int64_t valid,
                  std::int64_t kc, float alpha, float* dst) {
  std::int64_t p = 0;
  if (valid == kMR && k_contiguous) {
    // Six rows along k: transpose 8 k-steps at a time (two zero rows pad the 8x8 block).
    const __m256 va = _mm256_set1_ps(alpha);
    for (; p + 8 <= kc; p += 8) {
      __m256 r[8];
      for (int i = 0; i < kMR; ++i) r[i] = _mm256_mul_ps(va, _mm256_loadu_ps(src + i * ld + p));
      r[6] = r[7] = _mm256_setzero_ps();
      transpose8(r);
      for (int q = 0; q < 8; ++q) {
        float* d = dst + (p + q) * kMR;
        _mm_storeu_ps(d, _mm256_castps256_ps128(r[q]));
        _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), _mm256_extractf128_ps(r[q], 1));
      }
    }
  } else if (valid == kMR) {
    // Six contiguous values per k-step: the compiler vectorises this plain loop well enough
    // (A^T panels are a small fraction of the work).
    for (; p < kc; ++p)
      for (int i = 0; i < kMR; ++i) dst[p * kMR + i] = alpha * src[p * ld + i];
  }
  pack_scalar(src, ld, k_contiguous, kMR, valid, p, kc, alpha, dst);
}

void pack_panel_b(const float* src, std::int64_t ld, bool k_contiguous, std::int64_t valid,
                  std::int64_t kc, float* dst) {
  std::int64_t p = 0;
  if (valid == kNR && k_contiguous) {
    // B^T: sixteen rows along k, two 8x8 transposes per 8 k-steps.
    for (; p + 8 <= kc; p += 8) {
      for (int half = 0; half < 2; ++half) {
        __m256 r[8];
        const float* s = src + half * 8 * ld + p;
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * ld);
        transpose8(r);
        for (int q = 0; q < 8; ++q) _mm256_store_ps(dst + (p + q) * kNR + half * 8, r[q]);
      }
    }
  } else if (valid == kNR) {
    for (; p < kc; ++p) {
      const float* s = src + p * ld;
      _mm256_store_ps(dst + p * kNR, _mm256_loadu_ps(s));
      _mm256_store_ps(dst + p * kNR + 8, _mm256_loadu_ps(s + 8));
    }
  }
  pack_scalar(src, ld, k_contiguous, kNR, valid, p, kc, 1.0f, dst);
}

}  // namespace shrink::kernels::cpu::gemm_detail
