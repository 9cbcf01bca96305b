// sgemm / dgemm against the triple-loop reference in double (kernels/reference/gemm.h), over odd shapes (every
// micro-kernel edge case), all transpose combinations, padded leading dimensions and the
// alpha/beta special cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/reference/gemm.h"

namespace {

using shrink::kernels::cpu::dgemm;
using shrink::kernels::cpu::sgemm;

struct Shape {
  std::int64_t m, n, k;
};

struct Case {
  Shape shape;
  bool trans_a, trans_b;
  double alpha, beta;
  bool nan_c;  // pre-fill C with NaN (only meaningful with beta == 0)
};

std::string case_name(const Case& c) {
  return std::to_string(c.shape.m) + "x" + std::to_string(c.shape.n) + "x" + std::to_string(c.shape.k) +
         (c.trans_a ? " At" : " A") + (c.trans_b ? " Bt" : " B") + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + (c.nan_c ? " nanC" : "");
}

// Operand storage with leading dimensions deliberately larger than needed, so a kernel that
// assumes packed rows reads the wrong elements. The padding holds a sentinel that would poison
// any result that touches it.
template <typename T>
struct Operands {
  std::int64_t lda, ldb, ldc;
  std::vector<T> a, b, c;
  std::vector<double> c0;  // C before the call, for the reference

  Operands(const Case& cs, std::mt19937& rng) {
    const auto [m, n, k] = cs.shape;
    const std::int64_t a_rows = cs.trans_a ? k : m, a_cols = cs.trans_a ? m : k;
    const std::int64_t b_rows = cs.trans_b ? n : k, b_cols = cs.trans_b ? k : n;
    lda = a_cols + 3;
    ldb = b_cols + 5;
    ldc = n + 7;
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    const T sentinel = T(1e30);
    a.assign(static_cast<std::size_t>(std::max<std::int64_t>(a_rows, 1) * lda), sentinel);
    b.assign(static_cast<std::size_t>(std::max<std::int64_t>(b_rows, 1) * ldb), sentinel);
    c.assign(static_cast<std::size_t>(std::max<std::int64_t>(m, 1) * ldc), sentinel);
    for (std::int64_t i = 0; i < a_rows; ++i)
      for (std::int64_t j = 0; j < a_cols; ++j) a[i * lda + j] = T(dist(rng));
    for (std::int64_t i = 0; i < b_rows; ++i)
      for (std::int64_t j = 0; j < b_cols; ++j) b[i * ldb + j] = T(dist(rng));
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j)
        c[i * ldc + j] = cs.nan_c ? std::numeric_limits<T>::quiet_NaN() : T(dist(rng));
    c0.assign(c.begin(), c.end());
  }
};

// Checks every element of C against the double reference (tolerance scaled by sum |a||b|) and
// that the padding between rows of C was left alone.
template <typename T>
void check(const Case& cs, const Operands<T>& op, double rel_tol) {
  const auto [m, n, k] = cs.shape;
  // want = alpha op(A) op(B) + beta C0 (beta == 0 reads no C: 0 * NaN would be NaN), and the
  // size of its terms |alpha| sum |a||b| + |beta c| that scales the rounding bound.
  std::vector<double> want = op.c0, scale(op.c0.size(), 0.0);
  shrink::kernels::reference::gemm(cs.trans_a, cs.trans_b, m, n, k, cs.alpha, op.a.data(), op.lda,
                                   0, op.b.data(), op.ldb, 0, cs.beta, want.data(), op.ldc, 0, 1,
                                   scale.data());
  int failures = 0;
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      const double tol = rel_tol * scale[i * op.ldc + j] + 1e-30;
      const double got = op.c[i * op.ldc + j];
      if (!(std::abs(got - want[i * op.ldc + j]) <= tol) && failures++ < 5)
        ADD_FAILURE() << case_name(cs) << " C(" << i << "," << j << ") = " << got << ", want "
                      << want[i * op.ldc + j] << " (tol " << tol << ")";
    }
    for (std::int64_t j = n; j < op.ldc && i + 1 < m; ++j)
      if (op.c[i * op.ldc + j] != T(1e30) && failures++ < 5)
        ADD_FAILURE() << case_name(cs) << " wrote padding C(" << i << "," << j << ")";
  }
  EXPECT_EQ(failures, 0) << case_name(cs);
}

const std::vector<Shape> kShapes = {
    {1, 1, 1},     {7, 13, 5},     {31, 17, 129}, {65, 97, 33},  {257, 129, 300}, {6, 16, 256},
    {12, 32, 257}, {5, 15, 1},     {1, 300, 17},  {300, 1, 17},  {128, 10, 100},  {100, 530, 260},
    {0, 5, 7},     {5, 0, 7},      {0, 0, 0},
};

const std::vector<std::tuple<double, double, bool>> kScalars = {
    {1.0, 0.0, false}, {1.0, 0.0, true}, {0.5, -2.0, false}, {1.0, 1.0, false}, {-1.5, 0.0, true},
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const Shape& s : kShapes)
    for (int t = 0; t < 4; ++t)
      for (const auto& [alpha, beta, nan_c] : kScalars)
        cases.push_back({s, (t & 1) != 0, (t & 2) != 0, alpha, beta, nan_c});
  return cases;
}

TEST(Sgemm, MatchesReference) {
  std::mt19937 rng(1234);
  for (const Case& cs : all_cases()) {
    Operands<float> op(cs, rng);
    sgemm(cs.trans_a, cs.trans_b, cs.shape.m, cs.shape.n, cs.shape.k, float(cs.alpha), op.a.data(), op.lda,
          op.b.data(), op.ldb, float(cs.beta), op.c.data(), op.ldc);
    check(cs, op, 1e-5);
  }
}

TEST(Dgemm, MatchesReference) {
  std::mt19937 rng(99);
  for (const Case& cs : all_cases()) {
    Operands<double> op(cs, rng);
    dgemm(cs.trans_a, cs.trans_b, cs.shape.m, cs.shape.n, cs.shape.k, cs.alpha, op.a.data(), op.lda,
          op.b.data(), op.ldb, cs.beta, op.c.data(), op.ldc);
    check(cs, op, 1e-12);
  }
}

// k == 0: C = beta * C, and beta == 0 clears NaNs; alpha == 0 must not read A or B.
TEST(Sgemm, EmptyInnerDimensionScalesC) {
  std::vector<float> c = {1.0f, 2.0f, std::numeric_limits<float>::quiet_NaN(), 4.0f};
  sgemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, 0.0f, c.data(), 2);
  for (float v : c) EXPECT_EQ(v, 0.0f);
  c = {1.0f, 2.0f, 3.0f, 4.0f};
  sgemm(false, false, 2, 2, 0, 1.0f, nullptr, 1, nullptr, 2, -2.0f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{-2.0f, -4.0f, -6.0f, -8.0f}));
  sgemm(true, true, 2, 2, 3, 0.0f, nullptr, 2, nullptr, 3, 0.5f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{-1.0f, -2.0f, -3.0f, -4.0f}));
}

TEST(Dgemm, EmptyInnerDimensionScalesC) {
  std::vector<double> c = {1.0, std::numeric_limits<double>::quiet_NaN()};
  dgemm(false, false, 1, 2, 0, 1.0, nullptr, 1, nullptr, 2, 0.0, c.data(), 2);
  EXPECT_EQ(c, (std::vector<double>{0.0, 0.0}));
}

// Large enough to take the threaded path and several KC/MC blocks; the result must also be
// bit-identical across runs (each element is owned by one thread with a fixed k order).
TEST(Sgemm, LargeThreadedDeterministic) {
  const std::int64_t m = 301, n = 4200, k = 530;  // > kNC columns, > 2 KC blocks
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(m * k), b(k * n), c1(m * n, 0.0f), c2(m * n, std::numeric_limits<float>::quiet_NaN());
  for (auto& v : a) v = dist(rng);
  for (auto& v : b) v = dist(rng);
  sgemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c1.data(), n);
  sgemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c2.data(), n);
  EXPECT_EQ(c1, c2);
  int failures = 0;
  for (std::int64_t i = 0; i < m; i += 37)
    for (std::int64_t j = 0; j < n; j += 11) {
      double dot = 0.0, scale = 0.0;
      for (std::int64_t p = 0; p < k; ++p) {
        dot += double(a[i * k + p]) * b[p * n + j];
        scale += std::abs(double(a[i * k + p]) * b[p * n + j]);
      }
      if (!(std::abs(c1[i * n + j] - dot) <= 1e-5 * scale) && failures++ < 5)
        ADD_FAILURE() << "C(" << i << "," << j << ") = " << c1[i * n + j] << ", want " << dot;
    }
  EXPECT_EQ(failures, 0);
}

}  // namespace
