// The CPU backend's data movement (strided copy, index_select / index_add against
// kernels/reference/) and Philox random kernels (statistics, determinism, offsets).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/formulas/random.h"
#include "kernels/reference/layout.h"
#include "tests/cpu_kernel_test.h"
#include "tests/test_helpers.h"

namespace shrink::kernels {
namespace {

// ---- data movement ----

TEST(CpuKernelsLayout, StridedCopy) {
  // (3, 5, 7) read as its (7, 3, 5) permutation, a broadcast, a scalar, and a big transpose.
  const auto x = random_vec<double>(105, -1, 1, 9);
  {
    const std::int64_t shape[] = {7, 3, 5}, strides[] = {1, 35, 7};
    std::vector<double> out(105);
    cpu().strided_copy(DType::Float64, 3, shape, strides, x.data(), out.data());
    for (int a = 0; a < 7; ++a)
      for (int b = 0; b < 3; ++b)
        for (int c = 0; c < 5; ++c) ASSERT_EQ(out[(a * 3 + b) * 5 + c], x[b * 35 + c * 7 + a]);
  }
  {
    const std::int64_t shape[] = {4, 7}, strides[] = {0, 1};  // broadcast rows
    std::vector<double> out(28);
    cpu().strided_copy(DType::Float64, 2, shape, strides, x.data(), out.data());
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 7; ++c) ASSERT_EQ(out[r * 7 + c], x[c]);
  }
  {
    std::vector<double> out(1, 0);
    cpu().strided_copy(DType::Float64, 0, nullptr, nullptr, x.data() + 4, out.data());
    EXPECT_EQ(out[0], x[4]);
  }
  {
    const std::int64_t R = 211, C = 193;  // > 32768: threaded, transposed read
    std::vector<std::int64_t> in(R * C), out(R * C);
    for (std::int64_t i = 0; i < R * C; ++i) in[i] = i * 3 - 7;
    const std::int64_t shape[] = {C, R}, strides[] = {1, C};
    cpu().strided_copy(DType::Int64, 2, shape, strides, in.data(), out.data());
    for (std::int64_t c = 0; c < C; ++c)
      for (std::int64_t r = 0; r < R; ++r) ASSERT_EQ(out[c * R + r], in[r * C + c]);
  }
  {
    // Rows longer than a thread's piece (kernels/cpu/row_pieces.h): one contiguous row of an odd
    // length, then rows of 9001 read with stride 3 (every third element of the input).
    const std::int64_t n = 40009, rows = 3, row = 9001;
    std::vector<std::int64_t> in(rows * row * 3), out(n), out2(rows * row);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<std::int64_t>(i) * 5 + 1;
    const std::int64_t shape1[] = {n}, strides1[] = {1};
    cpu().strided_copy(DType::Int64, 1, shape1, strides1, in.data() + 7, out.data());
    for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], in[i + 7]) << i;
    const std::int64_t shape2[] = {rows, row}, strides2[] = {row * 3, 3};
    cpu().strided_copy(DType::Int64, 2, shape2, strides2, in.data(), out2.data());
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t i = 0; i < row; ++i) ASSERT_EQ(out2[r * row + i], in[r * row * 3 + i * 3]) << r << "," << i;
  }
}

TYPED_TEST(CpuKernels, IndexSelectAndIndexAddWithRepeatedIndices) {
  using T = TypeParam;
  struct Dims { std::int64_t outer, in_dim, inner; };
  for (const Dims d : {Dims{1, 5, 1}, Dims{3, 5, 7}, Dims{1, 9, 4001}, Dims{2003, 7, 3}}) {
    const std::vector<std::int64_t> idx = {d.in_dim - 1, 0, d.in_dim - 1, 2 % d.in_dim, 2 % d.in_dim,
                                           d.in_dim - 1};
    const std::int64_t k = static_cast<std::int64_t>(idx.size());
    const auto x = random_vec<T>(d.outer * d.in_dim * d.inner, -1, 1, 10);
    std::vector<T> out(d.outer * k * d.inner);
    cpu().index_select(dtype_of<T>(), d.outer, d.in_dim, d.inner, x.data(), k, idx.data(), out.data());
    auto g = random_vec<T>(d.outer * k * d.inner, -1, 1, 11);
    std::vector<T> acc = random_vec<T>(d.outer * d.in_dim * d.inner, -1, 1, 12);  // adds into
    std::vector<double> want_acc(acc.begin(), acc.end());
    cpu().index_add(dtype_of<T>(), d.outer, d.in_dim, d.inner, k, idx.data(), g.data(), acc.data());
    std::vector<T> want_out(out.size());
    reference::index_select(d.outer, d.in_dim, d.inner, x.data(), k, idx.data(), want_out.data());
    EXPECT_TRUE(testing::all_same("index_select " + std::to_string(d.outer), out, want_out));
    reference::index_add(d.outer, d.in_dim, d.inner, k, idx.data(), to_doubles(g).data(), want_acc.data());
    EXPECT_TRUE(all_close("index_add " + std::to_string(d.outer), acc, want_acc, tol<T>(), tol<T>()));
  }
}

// ---- random ----

TYPED_TEST(CpuKernels, DropoutMaskStatisticsAndDeterminism) {
  using T = TypeParam;
  const std::int64_t n = 200003;
  const auto x = random_vec<T>(n, -1, 1, 13);
  for (double p : {0.1, 0.5, 0.9}) {
    std::vector<T> y(n), mask(n), y2(n), mask2(n), y3(n), mask3(n);
    cpu().dropout(dtype_of<T>(), n, p, 42, 0, x.data(), y.data(), mask.data());
    cpu().dropout(dtype_of<T>(), n, p, 42, 0, x.data(), y2.data(), mask2.data());
    cpu().dropout(dtype_of<T>(), n, p, 42, 4 * 1000, x.data(), y3.data(), mask3.data());
    EXPECT_EQ(mask, mask2);  // same seed and offset
    EXPECT_NE(mask, mask3);  // another offset
    double mean = 0;
    const T scale = static_cast<T>(1 / (1 - p));
    for (std::int64_t i = 0; i < n; ++i) {
      ASSERT_TRUE(mask[i] == T(0) || mask[i] == scale) << mask[i];
      ASSERT_EQ(y[i], x[i] * mask[i]);
      mean += mask[i] != T(0);
    }
    mean /= double(n);
    EXPECT_NEAR(mean, 1 - p, 0.005) << "p " << p;  // ~5 standard deviations
    // Offsets index one stream: offset 4000 is the same as skipping 4000 values.
    std::vector<T> yl(n + 4000), ml(n + 4000), xl(n + 4000, T(1));
    cpu().dropout(dtype_of<T>(), n + 4000, p, 42, 0, xl.data(), yl.data(), ml.data());
    EXPECT_TRUE(std::equal(mask3.begin(), mask3.end(), ml.begin() + 4000));
    // Another seed differs.
    cpu().dropout(dtype_of<T>(), n, p, 43, 0, x.data(), y2.data(), mask2.data());
    EXPECT_NE(mask, mask2);
  }
}

// The kernels share one Philox block among 4 consecutive values; each value must still be the
// per-element formula's (kernels/formulas/random.h, what CUDA computes): odd lengths, pieces
// split between threads, offsets that start inside a block.
TYPED_TEST(CpuKernels, RandomValuesEqualThePerElementFormulas) {
  using T = TypeParam;
  for (const std::int64_t n : {std::int64_t{1}, std::int64_t{7}, std::int64_t{70001}}) {
    for (const std::uint64_t offset : {0ull, 4ull, 6ull, 4099ull}) {
      SCOPED_TRACE("n " + std::to_string(n) + " offset " + std::to_string(offset));
      const auto x = random_vec<T>(n, -1, 1, 5);
      std::vector<T> y(n), mask(n), u(n), g(n);
      const double p = 0.3;
      cpu().dropout(dtype_of<T>(), n, p, 42, offset, x.data(), y.data(), mask.data());
      cpu().random_uniform(dtype_of<T>(), n, -1.0, 3.0, 7, offset, u.data());
      cpu().random_normal(dtype_of<T>(), n, 0.5, 2.0, 9, offset, g.data());
      const T scale = static_cast<T>(1.0 / (1.0 - p)), below = formulas::uniform_below_hi<T>(-1.0, 3.0);
      for (std::int64_t i = 0; i < n; ++i) {
        const T m = formulas::dropout_mask<T>(42, offset, i, static_cast<float>(1.0 - p), scale);
        ASSERT_EQ(mask[i], m) << i;
        ASSERT_EQ(y[i], x[i] * m) << i;
        ASSERT_EQ(u[i], formulas::uniform_value<T>(7, offset, i, -1.0, 4.0, T(3), below)) << i;
        ASSERT_EQ(g[i], formulas::normal_value<T>(9, offset, i, 0.5, 2.0)) << i;
      }
    }
  }
}

TYPED_TEST(CpuKernels, RandomUniformAndNormalStatistics) {
  using T = TypeParam;
  const std::int64_t n = 1000000;
  std::vector<T> u(n), u2(n), g(n), g2(n);
  cpu().random_uniform(dtype_of<T>(), n, -1.0, 3.0, 7, 0, u.data());
  cpu().random_uniform(dtype_of<T>(), n, -1.0, 3.0, 7, 0, u2.data());
  EXPECT_EQ(u, u2);
  double mean = 0, var = 0;
  for (T v : u) {
    ASSERT_GE(v, T(-1));
    ASSERT_LT(v, T(3));
    mean += v;
  }
  mean /= n;
  for (T v : u) var += (v - mean) * (v - mean);
  var /= n;
  EXPECT_NEAR(mean, 1.0, 0.01);                    // sd of the mean: 0.0012
  EXPECT_NEAR(std::sqrt(var), 4 / std::sqrt(12.0), 0.005);
  cpu().random_normal(dtype_of<T>(), n, 0.5, 2.0, 7, 0, g.data());
  cpu().random_normal(dtype_of<T>(), n, 0.5, 2.0, 7, 0, g2.data());
  EXPECT_EQ(g, g2);
  mean = 0;
  var = 0;
  double within_one = 0;
  for (T v : g) {
    ASSERT_TRUE(std::isfinite(double(v)));
    mean += v;
  }
  mean /= n;
  for (T v : g) {
    var += (v - mean) * (v - mean);
    within_one += std::abs(v - 0.5) < 2.0;
  }
  var /= n;
  EXPECT_NEAR(mean, 0.5, 0.01);  // sd of the mean: 0.002
  EXPECT_NEAR(std::sqrt(var), 2.0, 0.01);
  EXPECT_NEAR(within_one / n, 0.6827, 0.003);  // the shape is normal, not just its moments
  // Different seeds or offsets give different streams; offset k skips k values.
  cpu().random_normal(dtype_of<T>(), n, 0.5, 2.0, 8, 0, g2.data());
  EXPECT_NE(g, g2);
  std::vector<T> shifted(16), head(24);
  cpu().random_uniform(dtype_of<T>(), 16, -1.0, 3.0, 7, 8, shifted.data());
  cpu().random_uniform(dtype_of<T>(), 24, -1.0, 3.0, 7, 0, head.data());
  EXPECT_TRUE(std::equal(shifted.begin(), shifted.end(), head.begin() + 8));
}

TEST(CpuKernelsRandom, Float32UniformStaysBelowHi) {
  std::vector<float> out(4);
  cpu().random_uniform(DType::Float32, 4, 0.0, 1.0, 0, 44126572, out.data());
  for (float v : out) EXPECT_LT(v, 1.0f);
  cpu().random_uniform(DType::Float32, 4, -2.0, 1.0, 0, 44126572, out.data());
  for (float v : out) {
    EXPECT_LT(v, 1.0f);
    EXPECT_GE(v, -2.0f);
  }
}

}  // namespace
}  // namespace shrink::kernels
