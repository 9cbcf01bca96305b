// The vectorised exact GELU of kernels/cpu/vector_gelu.h.
#include "kernels/cpu/vector_gelu.h"

#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/vector_exp.h"
#include "kernels/cpu/vector_exp8.h"

namespace shrink::kernels::cpu::vgelu {

namespace {

// Abramowitz & Stegun 7.1.26.
constexpr float kP = 0.3275911f, kA1 = 0.254829592f, kA2 = -0.284496736f, kA3 = 1.421413741f,
                kA4 = -1.453152027f, kA5 = 1.061405429f;
constexpr float kRsqrt2 = 0.70710678118654752f, kRsqrt2Pi = 0.39894228040143268f;

// Phi(x) and exp(-x^2 / 2) of eight lanes.
struct Cdf8 {
  __m256 cdf, gauss;
};
Cdf8 cdf8(__m256 x) {
  const __m256 z = _mm256_mul_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), _mm256_set1_ps(kRsqrt2));
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(kP), z, _mm256_set1_ps(1.0f)));
  __m256 poly = _mm256_fmadd_ps(_mm256_set1_ps(kA5), t, _mm256_set1_ps(kA4));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(kA3));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(kA2));
  poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(kA1));
  poly = _mm256_mul_ps(poly, t);
  const __m256 gauss = vexp::exp8(_mm256_mul_ps(_mm256_mul_ps(z, z), _mm256_set1_ps(-1.0f)));
  const __m256 tail = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), poly), gauss);  // Phi(-|x|)
  const __m256 upper = _mm256_sub_ps(_mm256_set1_ps(1.0f), tail);
  // x >= 0 takes 1 - Phi(-|x|); a NaN x compares false and keeps the NaN tail.
  return {_mm256_blendv_ps(tail, upper, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ)), gauss};
}

// The scalar twin: Phi(x) and exp(-x^2 / 2).
float cdf_and_gauss(float x, float& gauss) {
  const float z = std::fabs(x) * kRsqrt2;
  const float t = 1.0f / std::fma(kP, z, 1.0f);
  float poly = std::fma(kA5, t, kA4);
  poly = std::fma(poly, t, kA3);
  poly = std::fma(poly, t, kA2);
  poly = std::fma(poly, t, kA1);
  poly = poly * t;
  gauss = vexp::exp1((z * z) * -1.0f);
  const float tail = (0.5f * poly) * gauss;
  return x >= 0.0f ? 1.0f - tail : tail;
}

}  // namespace

float cdf1(float x) {
  float gauss;
  return cdf_and_gauss(x, gauss);
}

void gelu(const float* x, float* y, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    _mm256_storeu_ps(y + i, _mm256_mul_ps(v, cdf8(v).cdf));
  }
  for (; i < n; ++i) y[i] = x[i] * cdf1(x[i]);
}

void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const Cdf8 c = cdf8(v);
    const __m256 slope = _mm256_fmadd_ps(_mm256_mul_ps(v, _mm256_set1_ps(kRsqrt2Pi)), c.gauss, c.cdf);
    _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), slope));
  }
  for (; i < n; ++i) {
    float gauss;
    const float cdf = cdf_and_gauss(x[i], gauss);
    dx[i] = dy[i] * std::fma(x[i] * kRsqrt2Pi, gauss, cdf);
  }
}

}  // namespace shrink::kernels::cpu::vgelu
