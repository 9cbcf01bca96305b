// The vectorised exp of the CPU softmax (kernels/cpu/vector_exp.h): within 2 ulp of exp in
// double over the whole finite range it serves, the vector and scalar paths identical, masked
// scores exactly 0, NaN kept. And the vectorised exact GELU built on it.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/vector_exp.h"
#include "kernels/cpu/vector_gelu.h"

using namespace shrink::kernels::cpu;

TEST(VectorExp, WithinTwoUlpOfExpAndTheSameOnBothPaths) {
  const std::int64_t n = 1'000'003;  // odd: the last values take the scalar tail
  std::vector<float> x(n), y(n), one(n);
  for (std::int64_t i = 0; i < n; ++i) x[i] = -87.0f + 175.0f * static_cast<float>(i) / static_cast<float>(n - 1);
  vexp::exp_shifted(x.data(), 0.0f, y.data(), n);
  double worst = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double want = std::exp(static_cast<double>(x[i]));
    const double ulp = std::nextafter(static_cast<float>(want), std::numeric_limits<float>::infinity()) - static_cast<float>(want);
    worst = std::max(worst, std::abs(y[i] - want) / ulp);
    one[i] = vexp::exp1(x[i]);
    ASSERT_EQ(one[i], y[i]) << "x = " << x[i];  // scalar twin = vector lane
  }
  EXPECT_LT(worst, 2.0);
  // The returned sum, on a row softmax would see (shifted to at most 0).
  std::vector<float> row(1027), out(1027);
  double sum = 0;
  for (std::size_t i = 0; i < row.size(); ++i) sum += std::exp(static_cast<double>(row[i] = -0.01f * static_cast<float>(i)));
  EXPECT_NEAR(vexp::exp_shifted(row.data(), 0.0f, out.data(), 1027) / sum, 1.0, 1e-5);
}

TEST(VectorExp, MaskedScoresAreZeroAndNanStaysNan) {
  std::vector<float> x = {-1e9f, -88.4f, -200.0f, 0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f, -1e9f, -3.0f, -1e9f};
  std::vector<float> y(x.size());
  vexp::exp_shifted(x.data(), 0.0f, y.data(), static_cast<std::int64_t>(x.size()));
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[3], 1.0f);
  EXPECT_TRUE(std::isnan(y[4]));
  EXPECT_NEAR(y[5], std::exp(1.0f), 1e-6);
  EXPECT_EQ(y[6], 0.0f);
  EXPECT_EQ(y[8], 0.0f);  // the scalar tail too
  EXPECT_TRUE(std::isnan(vexp::exp1(std::numeric_limits<float>::quiet_NaN())));
}

// The exact GELU's vector path (kernels/cpu/vector_gelu.h): within A&S 7.1.26's bound (1.5e-7 on
// erf, so 0.75e-7 on Phi) plus float rounding of x Phi(x) against erf in double, over [-12, 12];
// the derivative likewise; the scalar twin equal to the vector lanes; NaN kept.
TEST(VectorGelu, CloseToErfInDoubleAndTheSameOnBothPaths) {
  const std::int64_t n = 400'003;
  std::vector<float> x(n), y(n), dy(n, 1.0f), dx(n);
  for (std::int64_t i = 0; i < n; ++i) x[i] = -12.0f + 24.0f * static_cast<float>(i) / static_cast<float>(n - 1);
  vgelu::gelu(x.data(), y.data(), n);
  vgelu::gelu_backward(x.data(), dy.data(), dx.data(), n);
  double worst = 0, worst_grad = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = x[i], cdf = 0.5 * std::erfc(-v / std::sqrt(2.0));
    const double slope = cdf + v * std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
    // 0.75e-7 in Phi, times |x|, and a few float roundings of the result.
    worst = std::max(worst, std::abs(y[i] - v * cdf) / (1.5e-7 * std::max(1.0, std::abs(v)) + 4e-7 * std::abs(v * cdf)));
    worst_grad = std::max(worst_grad, std::abs(dx[i] - slope) / (1.5e-7 * std::max(1.0, std::abs(v)) + 4e-7 * std::abs(slope)));
    ASSERT_EQ(y[i], x[i] * vgelu::cdf1(x[i])) << "x = " << x[i];  // scalar twin = vector lane
  }
  EXPECT_LT(worst, 1.0);
  EXPECT_LT(worst_grad, 1.0);
  std::vector<float> odd = {std::numeric_limits<float>::quiet_NaN(), 0.0f, 30.0f, -30.0f, 1.0f, -1.0f, 2.0f, 3.0f,
                            std::numeric_limits<float>::quiet_NaN()};
  std::vector<float> out(odd.size());
  vgelu::gelu(odd.data(), out.data(), static_cast<std::int64_t>(odd.size()));
  EXPECT_TRUE(std::isnan(out[0]) && std::isnan(out[8]));  // a vector lane and the scalar tail
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_EQ(out[2], 30.0f);
  EXPECT_EQ(out[3], 0.0f);
}
