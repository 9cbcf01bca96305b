// The CPU cholesky and triangular_solve kernels against the reference loops
// (kernels/reference/cholesky.h) on odd sizes that straddle the 128-column blocks and the
// 512-column trailing slabs, in float and double; matrices that are not positive definite
// (a negative and a NaN pivot, inside and past the first block); and the core op
// cholesky_solve, its residual and its errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "kernels/reference/cholesky.h"
#include "tests/cpu_kernel_test.h"

namespace shrink::kernels {
namespace {

// A well-conditioned symmetric positive definite matrix: M M^T / n + I / 2 (eigenvalues in
// about [0.5, 4.5]), M uniform in [-1, 1].
std::vector<double> spd(std::int64_t n, std::uint64_t seed) {
  const std::vector<double> m = random_vec<double>(n * n, -1, 1, seed);
  std::vector<double> a(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j <= i; ++j) {
      double s = 0;
      for (std::int64_t p = 0; p < n; ++p) s += m[i * n + p] * m[j * n + p];
      a[i * n + j] = a[j * n + i] = s / static_cast<double>(n) + (i == j ? 0.5 : 0.0);
    }
  return a;
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <class T>
std::int64_t factor(std::int64_t n, const std::vector<T>& a, std::vector<T>& l) {
  l.assign(static_cast<std::size_t>(n * n), T(-7));  // poison: every element must be written
  std::int64_t info = -1;
  cpu().cholesky(testing::dtype_of<T>(), n, a.data(), l.data(), &info);
  return info;
}

template <class T>
double factor_tol() { return std::is_same_v<T, float> ? 2e-5 : 1e-12; }

const std::int64_t kSizes[] = {1, 2, 7, 127, 128, 129, 300, 641};

TYPED_TEST(CpuKernels, CholeskyMatchesReferenceOnOddSizes) {
  using T = TypeParam;
  for (std::int64_t n : kSizes) {
    const std::vector<double> a = spd(n, 100 + static_cast<std::uint64_t>(n));
    std::vector<double> want;
    ASSERT_EQ(reference::cholesky(n, a, want), n);
    std::vector<T> l;
    ASSERT_EQ(factor<T>(n, cast<T>(a), l), n) << "n = " << n;
    EXPECT_TRUE(all_close("L, n = " + std::to_string(n), l, want, factor_tol<T>(), factor_tol<T>()));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = i + 1; j < n; ++j) ASSERT_EQ(l[i * n + j], T(0)) << "upper (" << i << ", " << j << ")";
  }
}

TYPED_TEST(CpuKernels, TriangularSolveMatchesReferenceBothWays) {
  using T = TypeParam;
  for (std::int64_t n : {1, 5, 129, 300}) {
    const std::vector<double> a = spd(n, 7 + static_cast<std::uint64_t>(n));
    std::vector<double> l;
    ASSERT_EQ(reference::cholesky(n, a, l), n);
    for (std::int64_t r : {1, 3, 10, 131}) {
      const std::vector<double> b = random_vec<double>(n * r, -1, 1, static_cast<std::uint64_t>(n * r));
      for (bool transpose : {false, true}) {
        const std::vector<double> want = reference::triangular_solve(n, r, l, transpose, b);
        const std::vector<T> lt = cast<T>(l), bt = cast<T>(b);
        std::vector<T> x(bt.size(), T(-7));
        cpu().triangular_solve(testing::dtype_of<T>(), n, r, lt.data(), transpose, bt.data(), x.data());
        EXPECT_TRUE(all_close("x, n = " + std::to_string(n) + " r = " + std::to_string(r) +
                                  (transpose ? " L^T" : " L"),
                              x, want, factor_tol<T>(), factor_tol<T>()));
      }
    }
  }
}

TYPED_TEST(CpuKernels, CholeskyReportsTheFirstBadPivot) {
  using T = TypeParam;
  // A negative diagonal entry makes pivot j negative whatever precedes it; the leading j x j
  // block stays positive definite, so j is the first bad pivot.
  for (auto [n, j] : {std::pair<std::int64_t, std::int64_t>{9, 5}, {300, 200}, {300, 0}, {129, 128}}) {
    std::vector<double> a = spd(n, 3);
    a[j * n + j] = -1;
    std::vector<T> l;
    EXPECT_EQ(factor<T>(n, cast<T>(a), l), j) << "n = " << n;
    a[j * n + j] = std::numeric_limits<double>::quiet_NaN();
    EXPECT_EQ(factor<T>(n, cast<T>(a), l), j) << "NaN, n = " << n;
  }
}

TEST(CholeskySolve, SolvesTheSystem) {
  for (std::int64_t n : {3, 130, 517}) {
    const std::vector<double> a = spd(n, 11);
    const std::int64_t m = 4;
    const std::vector<double> b = random_vec<double>(n * m, -1, 1, 12);
    const Tensor g = Tensor::from_vector(a, {n, n}), rhs = Tensor::from_vector(b, {n, m});
    const Tensor x = cholesky_solve(g, rhs);
    EXPECT_TRUE(testing::all_close("G X vs B, n = " + std::to_string(n), matmul(g, x), rhs, 1e-11, 1e-11));
    const Tensor xf = cholesky_solve(g.to(DType::Float32), rhs.to(DType::Float32));
    EXPECT_TRUE(testing::all_close("float X, n = " + std::to_string(n), xf, x, 1e-4, 1e-4));
  }
}

TEST(CholeskySolve, NotPositiveDefiniteNamesOpAndPivot) {
  std::vector<double> a = spd(7, 5);
  a[3 * 7 + 3] = -2;
  try {
    cholesky_solve(Tensor::from_vector(a, {7, 7}), Tensor::ones({7, 1}, DType::Float64));
    FAIL() << "a matrix that is not positive definite was solved";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cholesky_solve"), std::string::npos) << what;
    EXPECT_NE(what.find("not positive definite"), std::string::npos) << what;
    EXPECT_NE(what.find("pivot 3"), std::string::npos) << what;
  }
}

TEST(CholeskySolve, RejectsBadShapesAndGradients) {
  const Tensor g = Tensor::from_vector(spd(4, 1), {4, 4});
  EXPECT_THROW(cholesky_solve(Tensor::ones({4, 3}, DType::Float64), Tensor::ones({4, 1}, DType::Float64)), Error);
  EXPECT_THROW(cholesky_solve(g, Tensor::ones({3, 1}, DType::Float64)), Error);
  EXPECT_THROW(cholesky_solve(g, Tensor::ones({4, 1}, DType::Float32)), Error);  // dtypes differ
  EXPECT_THROW(cholesky_solve(Tensor::ones({4, 4}, DType::Int64), Tensor::ones({4, 1}, DType::Int64)), Error);
  Tensor leaf = g.clone();
  leaf.requires_grad_();
  EXPECT_THROW(cholesky_solve(leaf, Tensor::ones({4, 1}, DType::Float64)), Error);
  NoGradGuard no_grad;
  EXPECT_NO_THROW(cholesky_solve(leaf, Tensor::ones({4, 1}, DType::Float64)));
}

}  // namespace
}  // namespace shrink::kernels
