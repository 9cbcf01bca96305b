// Float/double math wrappers for the formulas in kernels/formulas/: one name per function,
// overloaded on the precision. On the host they are the C++ library's std:: functions (what
// the CPU kernels always called, so vectorised loops are unchanged); in CUDA device code
// they are the CUDA math library's float (expf, ...) or double (exp, ...) routine.
#pragma once
#include <cmath>

#include "kernels/formulas/hd.h"

namespace shrink::kernels::formulas {

#if defined(__CUDA_ARCH__)
#define SHRINK_MATH_1(name, device_f, device_d)                   \
  SHRINK_HD float name(float x) { return ::device_f(x); }         \
  SHRINK_HD double name(double x) { return ::device_d(x); }
#define SHRINK_MATH_2(name, device_f, device_d)                               \
  SHRINK_HD float name(float x, float y) { return ::device_f(x, y); }         \
  SHRINK_HD double name(double x, double y) { return ::device_d(x, y); }
#else
#define SHRINK_MATH_1(name, device_f, device_d)                    \
  SHRINK_HD float name(float x) { return std::device_d(x); }       \
  SHRINK_HD double name(double x) { return std::device_d(x); }
#define SHRINK_MATH_2(name, device_f, device_d)                                \
  SHRINK_HD float name(float x, float y) { return std::device_d(x, y); }       \
  SHRINK_HD double name(double x, double y) { return std::device_d(x, y); }
#endif

SHRINK_MATH_1(m_exp, expf, exp)
SHRINK_MATH_1(m_log, logf, log)
SHRINK_MATH_1(m_sqrt, sqrtf, sqrt)
SHRINK_MATH_1(m_erf, erff, erf)
SHRINK_MATH_1(m_tanh, tanhf, tanh)
SHRINK_MATH_1(m_abs, fabsf, fabs)
SHRINK_MATH_1(m_cos, cosf, cos)
SHRINK_MATH_2(m_pow, powf, pow)

// Fused multiply-add a * b + c with one rounding (GCC under -mfma contracts the plain form
// anyway; spelling it out makes both backends round the same way).
#if defined(__CUDA_ARCH__)
SHRINK_HD float m_fma(float a, float b, float c) { return ::fmaf(a, b, c); }
SHRINK_HD double m_fma(double a, double b, double c) { return ::fma(a, b, c); }
#else
SHRINK_HD float m_fma(float a, float b, float c) { return std::fma(a, b, c); }
SHRINK_HD double m_fma(double a, double b, double c) { return std::fma(a, b, c); }
#endif

#undef SHRINK_MATH_1
#undef SHRINK_MATH_2

// NaN or +-Inf: x - x is 0 for every finite x and NaN otherwise. Branch-free and free of
// library calls, so CPU loops over it vectorise and both backends agree bit for bit.
template <class T>
SHRINK_HD bool is_nonfinite(T x) {
  return x - x != T(0);
}

}  // namespace shrink::kernels::formulas
