// exp of float32 values with AVX2/FMA, eight at a time, and its scalar twin for the tails of a
// row: both run the same operations (fused multiply-adds included), so every element of a row
// gets the same answer whichever path computed it. Cephes' expf: x = n ln2 + r with |r| <=
// ln2 / 2 (ln2 split in two constants for an exact reduction), e^r by a degree-6 polynomial,
// 2^n by writing n + 127 into the exponent bits. Relative error below 2 ulp on [-87.3, 88.3]
// (tests/test_vector_exp.cpp). Inputs are clamped to [-88.38, 88.38]: the bottom of the range,
// e.g. a masked attention score of -1e9, gives exactly 0, the top about 2.4e38 (not inf); NaN
// stays NaN. For softmax, whose inputs are already shifted to at most 0.
#pragma once
#include <cstdint>

namespace shrink::kernels::cpu::vexp {

// exp(x) by the scalar twin of the vector path.
float exp1(float x);
// y[i] = exp(x[i] - shift) for i < n, eight at a time and the tail by exp1; returns their sum
// (in float, as the scalar loop it replaces).
float exp_shifted(const float* x, float shift, float* y, std::int64_t n);

}  // namespace shrink::kernels::cpu::vexp
