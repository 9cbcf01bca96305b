// The exact (erf) GELU of float32 values with AVX2/FMA, eight at a time, and its scalar twin for
// the tails (the same operations, so every element gets the same answer whichever path took it).
// Phi(x) = 0.5 erfc(-x / sqrt 2) by Abramowitz & Stegun 7.1.26: for z >= 0,
//   erfc(z) = t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-z^2),  t = 1 / (1 + p z),
// absolute error <= 1.5e-7, taken as Phi(-|x|) and reflected (Phi(x) = 1 - Phi(-x)), exp by
// kernels/cpu/vector_exp.h. gelu(x) = x Phi(x), gelu'(x) = Phi(x) + x phi(x) with
// phi(x) = exp(-x^2 / 2) / sqrt(2 pi) the same exponential. tests/test_vector_exp.cpp bounds
// the error against erf in double. NaN stays NaN.
#pragma once
#include <cstdint>

namespace shrink::kernels::cpu::vgelu {

// Phi(x) by the scalar twin of the vector path.
float cdf1(float x);
// y[i] = gelu(x[i]) for i < n.
void gelu(const float* x, float* y, std::int64_t n);
// dx[i] = dy[i] gelu'(x[i]) for i < n.
void gelu_backward(const float* x, const float* dy, float* dx, std::int64_t n);

}  // namespace shrink::kernels::cpu::vgelu
