// The CPU backend's kernels against plain reference loops, on odd shapes, on tiny sizes
// and on sizes above the OpenMP grain (32768 elements) so the threaded paths run too.
// GEMM has its own suite (test_gemm.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels {
namespace {

Backend& cpu() { return backend(DeviceType::CPU); }

constexpr std::int64_t kBig = 40009;  // > kParallelGrain, odd
static_assert(kBig > cpu::kParallelGrain);

template <class T>
std::vector<T> random_vec(std::int64_t n, double lo, double hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(d(rng));
  return v;
}

template <class T>
double tol() { return std::is_same_v<T, float> ? 2e-6 : 1e-13; }

template <class T>
void expect_near_all(const std::vector<T>& got, const std::vector<double>& want, double rel,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(double(got[i]), want[i], rel * (1 + std::abs(want[i]))) << what << " at " << i;
}

template <class T> constexpr DType dt() {
  return std::is_same_v<T, float> ? DType::Float32 : DType::Float64;
}

template <class T>
class CpuKernels : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CpuKernels, FloatTypes);

// ---- binary with broadcast descriptors ----

TYPED_TEST(CpuKernels, BinaryWithBroadcastDescriptors) {
  using T = TypeParam;
  struct Desc {
    std::vector<std::int64_t> shape, sa, sb;
    std::int64_t na, nb;  // operand sizes
  };
  const std::vector<Desc> descs = {
      {{}, {}, {}, 1, 1},                                // scalar op scalar
      {{7}, {1}, {1}, 7, 7},                             // dense
      {{7}, {1}, {0}, 7, 1},                             // row op scalar
      {{7}, {0}, {1}, 1, 7},                             // scalar op row
      {{3, 5, 7}, {35, 7, 1}, {0, 1, 0}, 105, 5},        // b (5,) broadcast on axis 1
      {{3, 5, 7}, {1, 3, 15}, {35, 7, 1}, 105, 105},     // a read transposed (non-unit last stride)
      {{5, 7}, {0, 1}, {1, 0}, 7, 5},                    // outer product layout
      {{37, 1087}, {1087, 1}, {1, 0}, 37 * 1087, 37},    // threaded, column broadcast
      {{3, 13339}, {0, 1}, {13339, 1}, 13339, 3 * 13339},  // threaded, broadcast a rows
      {{kBig}, {1}, {1}, kBig, kBig},                    // one long dense row
  };
  const BinaryOp ops[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div};
  for (const auto& d : descs) {
    BroadcastShape s;
    s.ndim = static_cast<int>(d.shape.size());
    std::int64_t n = 1;
    for (int i = 0; i < s.ndim; ++i) {
      s.shape[i] = d.shape[i];
      s.stride_a[i] = d.sa[i];
      s.stride_b[i] = d.sb[i];
      n *= d.shape[i];
    }
    const auto a = random_vec<T>(d.na, -2, 2, 1), b = random_vec<T>(d.nb, 0.5, 2, 2);
    for (BinaryOp op : ops) {
      std::vector<T> out(static_cast<size_t>(n), T(-999));
      cpu().binary(op, dt<T>(), s, a.data(), b.data(), out.data());
      std::vector<double> want(static_cast<size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) {
        std::int64_t rem = i, oa = 0, ob = 0;
        for (int k = s.ndim - 1; k >= 0; --k) {
          const std::int64_t c = rem % s.shape[k];
          rem /= s.shape[k];
          oa += c * s.stride_a[k];
          ob += c * s.stride_b[k];
        }
        const double x = a[oa], y = b[ob];
        want[i] = op == BinaryOp::Add ? x + y : op == BinaryOp::Sub ? x - y
                : op == BinaryOp::Mul ? x * y : x / y;
      }
      expect_near_all(out, want, tol<T>(), "binary op " + std::to_string(int(op)) + " ndim " +
                                               std::to_string(s.ndim) + " n " + std::to_string(n));
    }
  }
}

// ---- unary forward and backward ----

struct UnaryRef {
  UnaryOp op;
  const char* name;
  double lo, hi, alpha;
  double (*f)(double, double);
  double (*df)(double, double);
};

const UnaryRef kUnary[] = {
    {UnaryOp::Neg, "neg", -3, 3, 0, [](double x, double) { return -x; }, [](double, double) { return -1.0; }},
    {UnaryOp::Exp, "exp", -3, 3, 0, [](double x, double) { return std::exp(x); },
     [](double x, double) { return std::exp(x); }},
    {UnaryOp::Log, "log", 0.1, 4, 0, [](double x, double) { return std::log(x); },
     [](double x, double) { return 1 / x; }},
    {UnaryOp::Sqrt, "sqrt", 0.1, 4, 0, [](double x, double) { return std::sqrt(x); },
     [](double x, double) { return 0.5 / std::sqrt(x); }},
    {UnaryOp::Relu, "relu", -3, 3, 0, [](double x, double) { return x > 0 ? x : 0.0; },
     [](double x, double) { return x > 0 ? 1.0 : 0.0; }},
    {UnaryOp::Relu6, "relu6", -3, 9, 0, [](double x, double) { return std::clamp(x, 0.0, 6.0); },
     [](double x, double) { return x > 0 && x < 6 ? 1.0 : 0.0; }},
    {UnaryOp::Gelu, "gelu", -4, 4, 0,
     [](double x, double) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); },
     [](double x, double) {
       return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI);
     }},
    {UnaryOp::Tanh, "tanh", -4, 4, 0, [](double x, double) { return std::tanh(x); },
     [](double x, double) { return 1 - std::tanh(x) * std::tanh(x); }},
    {UnaryOp::Sigmoid, "sigmoid", -6, 6, 0, [](double x, double) { return 1 / (1 + std::exp(-x)); },
     [](double x, double) {
       const double s = 1 / (1 + std::exp(-x));
       return s * (1 - s);
     }},
    {UnaryOp::PowScalar, "pow", 0.1, 3, 2.5, [](double x, double a) { return std::pow(x, a); },
     [](double x, double a) { return a * std::pow(x, a - 1); }},
    {UnaryOp::AddScalar, "add_scalar", -3, 3, 0.75, [](double x, double a) { return x + a; },
     [](double, double) { return 1.0; }},
    {UnaryOp::MulScalar, "mul_scalar", -3, 3, -1.25, [](double x, double a) { return x * a; },
     [](double, double a) { return a; }},
    {UnaryOp::Abs, "abs", -3, 3, 0, [](double x, double) { return std::abs(x); },
     [](double x, double) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; }},
    {UnaryOp::Sign, "sign", -3, 3, 0, [](double x, double) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; },
     [](double, double) { return 0.0; }},
    {UnaryOp::Square, "square", -3, 3, 0, [](double x, double) { return x * x; },
     [](double x, double) { return 2 * x; }},
};

TYPED_TEST(CpuKernels, UnaryForwardAndBackwardEveryOp) {
  using T = TypeParam;
  for (const auto& u : kUnary)
    for (std::int64_t n : {std::int64_t{1}, std::int64_t{7}, kBig}) {
      auto x = random_vec<T>(n, u.lo, u.hi, 3);
      if (n >= 7 && u.op != UnaryOp::Log && u.op != UnaryOp::Sqrt && u.op != UnaryOp::PowScalar)
        x[3] = T(0);  // exact zero: relu, abs, sign at their kink
      const auto dy = random_vec<T>(n, -1, 1, 4);
      std::vector<T> y(static_cast<size_t>(n)), dx(static_cast<size_t>(n));
      cpu().unary(u.op, dt<T>(), n, u.alpha, x.data(), y.data());
      cpu().unary_backward(u.op, dt<T>(), n, u.alpha, x.data(), y.data(), dy.data(), dx.data());
      std::vector<double> wy(x.size()), wdx(x.size());
      for (size_t i = 0; i < x.size(); ++i) {
        wy[i] = u.f(x[i], u.alpha);
        wdx[i] = dy[i] * u.df(x[i], u.alpha);
      }
      const std::string what = std::string(u.name) + " n=" + std::to_string(n);
      expect_near_all(y, wy, 4 * tol<T>(), what + " forward");
      expect_near_all(dx, wdx, 4 * tol<T>(), what + " backward");
    }
}

// ---- reductions ----

TYPED_TEST(CpuKernels, ReduceSumAndMaxWithArgmax) {
  using T = TypeParam;
  struct Dims { std::int64_t outer, reduce, inner; };
  for (const Dims d : {Dims{1, 1, 1}, Dims{3, 5, 7}, Dims{1, 13, 1}, Dims{7, 5, 1}, Dims{3, 1, 7},
                       Dims{2, 3, 300}, Dims{1, kBig, 1}, Dims{kBig, 3, 1}, Dims{5, 7, 1031},
                       Dims{3, 0, 2}}) {
    const std::int64_t n = d.outer * d.reduce * d.inner, m = d.outer * d.inner;
    // Few distinct values so that ties are common.
    auto x = random_vec<T>(n, -4, 4, 5);
    for (auto& v : x) v = std::round(v);
    std::vector<T> s(static_cast<size_t>(m), T(-7)), mx(static_cast<size_t>(m)), mx2(m);
    std::vector<std::int64_t> am(static_cast<size_t>(m), -1);
    cpu().reduce(ReduceOp::Sum, dt<T>(), d.outer, d.reduce, d.inner, x.data(), s.data(), nullptr);
    std::vector<double> ws(m, 0.0), wm(m, -1e300);
    std::vector<std::int64_t> wam(m, 0);
    for (std::int64_t o = 0; o < d.outer; ++o)
      for (std::int64_t r = 0; r < d.reduce; ++r)
        for (std::int64_t i = 0; i < d.inner; ++i) {
          const double v = x[(o * d.reduce + r) * d.inner + i];
          ws[o * d.inner + i] += v;
          if (v > wm[o * d.inner + i]) {
            wm[o * d.inner + i] = v;
            wam[o * d.inner + i] = r;
          }
        }
    const std::string what = std::to_string(d.outer) + "x" + std::to_string(d.reduce) + "x" + std::to_string(d.inner);
    expect_near_all(s, ws, tol<T>(), "sum " + what);
    if (d.reduce == 0) continue;  // max of nothing is rejected above the kernel
    cpu().reduce(ReduceOp::Max, dt<T>(), d.outer, d.reduce, d.inner, x.data(), mx.data(), am.data());
    cpu().reduce(ReduceOp::Max, dt<T>(), d.outer, d.reduce, d.inner, x.data(), mx2.data(), nullptr);
    expect_near_all(mx, wm, 0, "max " + what);
    EXPECT_EQ(mx, mx2);
    EXPECT_EQ(am, wam) << "argmax (first of ties) " << what;
  }
}

TYPED_TEST(CpuKernels, MaxOfAllNegativeInfinityAndTies) {
  using T = TypeParam;
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<T> x = {-inf, -inf, 2, 5, 5, 1};  // (2, 3, 1)
  std::vector<T> out(2);
  std::vector<std::int64_t> am(2);
  cpu().reduce(ReduceOp::Max, dt<T>(), 2, 3, 1, x.data(), out.data(), am.data());
  EXPECT_EQ(am, (std::vector<std::int64_t>{2, 0}));
  EXPECT_EQ(out, (std::vector<T>{2, 5}));
  std::vector<T> all_inf = {-inf, -inf, -inf};
  cpu().reduce(ReduceOp::Max, dt<T>(), 1, 3, 1, all_inf.data(), out.data(), am.data());
  EXPECT_EQ(am[0], 0);
  EXPECT_EQ(out[0], -inf);
}

// ---- softmax family ----

TYPED_TEST(CpuKernels, SoftmaxLogSoftmaxAndBackward) {
  using T = TypeParam;
  struct Dims { std::int64_t outer, dim, inner; };
  for (const Dims d : {Dims{1, 1, 1}, Dims{3, 5, 7}, Dims{5, 7, 1}, Dims{1, 11, 3}, Dims{331, 101, 1},
                       Dims{3, 7, 2003}}) {
    const std::int64_t n = d.outer * d.dim * d.inner;
    const auto x = random_vec<T>(n, -6, 6, 6), dy = random_vec<T>(n, -1, 1, 7);
    for (bool log : {false, true}) {
      std::vector<T> y(n), dx(n);
      cpu().softmax(dt<T>(), log, d.outer, d.dim, d.inner, x.data(), y.data());
      cpu().softmax_backward(dt<T>(), log, d.outer, d.dim, d.inner, y.data(), dy.data(), dx.data());
      std::vector<double> wy(n), wdx(n);
      for (std::int64_t o = 0; o < d.outer; ++o)
        for (std::int64_t i = 0; i < d.inner; ++i) {
          auto at = [&](std::int64_t k) { return (o * d.dim + k) * d.inner + i; };
          double total = 0;
          for (std::int64_t k = 0; k < d.dim; ++k) total += std::exp(double(x[at(k)]));
          double dot = 0, dsum = 0;
          for (std::int64_t k = 0; k < d.dim; ++k) {
            const double p = std::exp(double(x[at(k)])) / total;
            wy[at(k)] = log ? std::log(p) : p;
            dot += dy[at(k)] * p;
            dsum += dy[at(k)];
          }
          for (std::int64_t k = 0; k < d.dim; ++k) {
            const double p = std::exp(double(x[at(k)])) / total;
            // Jacobian-vector products: softmax  p (dy - <dy, p>); log_softmax  dy - p sum(dy)
            wdx[at(k)] = log ? dy[at(k)] - p * dsum : p * (dy[at(k)] - dot);
          }
        }
      const std::string what = std::string(log ? "log_softmax " : "softmax ") + std::to_string(n);
      expect_near_all(y, wy, 8 * tol<T>(), what);
      expect_near_all(dx, wdx, 8 * tol<T>(), what + " backward");
    }
  }
}

TYPED_TEST(CpuKernels, CrossEntropyAndBackwardWithSmoothing) {
  using T = TypeParam;
  for (auto [n, c] : std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 1}, {5, 7}, {3301, 11}}) {
    const auto z = random_vec<T>(n * c, -5, 5, 8);
    std::vector<std::int64_t> labels(n);
    for (std::int64_t r = 0; r < n; ++r) labels[r] = (r * 7 + 3) % c;
    for (double eps : {0.0, 0.1, 1.0}) {
      std::vector<T> loss(n), probs(n * c), grad(n * c);
      const double scale = 0.37;
      cpu().cross_entropy(dt<T>(), n, c, eps, z.data(), labels.data(), loss.data(), probs.data());
      cpu().cross_entropy_backward(dt<T>(), n, c, eps, scale, probs.data(), labels.data(), grad.data());
      std::vector<double> wl(n), wp(n * c), wg(n * c);
      for (std::int64_t r = 0; r < n; ++r) {
        double total = 0;
        for (std::int64_t j = 0; j < c; ++j) total += std::exp(double(z[r * c + j]));
        for (std::int64_t j = 0; j < c; ++j) {
          const double p = std::exp(double(z[r * c + j])) / total;
          const double target = (j == labels[r] ? 1 - eps : 0.0) + eps / double(c);
          wl[r] -= target * std::log(p);
          wp[r * c + j] = p;
          wg[r * c + j] = scale * (p - target);
        }
      }
      const std::string what = "cross_entropy n=" + std::to_string(n) + " eps=" + std::to_string(eps);
      expect_near_all(loss, wl, 8 * tol<T>(), what);
      expect_near_all(probs, wp, 8 * tol<T>(), what + " probs");
      expect_near_all(grad, wg, 8 * tol<T>(), what + " backward");
    }
  }
}

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
    cpu().index_select(dt<T>(), d.outer, d.in_dim, d.inner, x.data(), k, idx.data(), out.data());
    auto g = random_vec<T>(d.outer * k * d.inner, -1, 1, 11);
    std::vector<T> acc = random_vec<T>(d.outer * d.in_dim * d.inner, -1, 1, 12);  // adds into
    std::vector<double> want_acc(acc.begin(), acc.end());
    cpu().index_add(dt<T>(), d.outer, d.in_dim, d.inner, k, idx.data(), g.data(), acc.data());
    for (std::int64_t o = 0; o < d.outer; ++o)
      for (std::int64_t j = 0; j < k; ++j)
        for (std::int64_t i = 0; i < d.inner; ++i) {
          ASSERT_EQ(out[(o * k + j) * d.inner + i], x[(o * d.in_dim + idx[j]) * d.inner + i]);
          want_acc[(o * d.in_dim + idx[j]) * d.inner + i] += g[(o * k + j) * d.inner + i];
        }
    expect_near_all(acc, want_acc, tol<T>(), "index_add " + std::to_string(d.outer));
  }
}

// ---- random ----

TYPED_TEST(CpuKernels, DropoutMaskStatisticsAndDeterminism) {
  using T = TypeParam;
  const std::int64_t n = 200003;
  const auto x = random_vec<T>(n, -1, 1, 13);
  for (double p : {0.1, 0.5, 0.9}) {
    std::vector<T> y(n), mask(n), y2(n), mask2(n), y3(n), mask3(n);
    cpu().dropout(dt<T>(), n, p, 42, 0, x.data(), y.data(), mask.data());
    cpu().dropout(dt<T>(), n, p, 42, 0, x.data(), y2.data(), mask2.data());
    cpu().dropout(dt<T>(), n, p, 42, 4 * 1000, x.data(), y3.data(), mask3.data());
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
    cpu().dropout(dt<T>(), n + 4000, p, 42, 0, xl.data(), yl.data(), ml.data());
    EXPECT_TRUE(std::equal(mask3.begin(), mask3.end(), ml.begin() + 4000));
    // Another seed differs.
    cpu().dropout(dt<T>(), n, p, 43, 0, x.data(), y2.data(), mask2.data());
    EXPECT_NE(mask, mask2);
  }
}

TYPED_TEST(CpuKernels, RandomUniformAndNormalStatistics) {
  using T = TypeParam;
  const std::int64_t n = 1000000;
  std::vector<T> u(n), u2(n), g(n), g2(n);
  cpu().random_uniform(dt<T>(), n, -1.0, 3.0, 7, 0, u.data());
  cpu().random_uniform(dt<T>(), n, -1.0, 3.0, 7, 0, u2.data());
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
  cpu().random_normal(dt<T>(), n, 0.5, 2.0, 7, 0, g.data());
  cpu().random_normal(dt<T>(), n, 0.5, 2.0, 7, 0, g2.data());
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
  cpu().random_normal(dt<T>(), n, 0.5, 2.0, 8, 0, g2.data());
  EXPECT_NE(g, g2);
  std::vector<T> shifted(16), head(24);
  cpu().random_uniform(dt<T>(), 16, -1.0, 3.0, 7, 8, shifted.data());
  cpu().random_uniform(dt<T>(), 24, -1.0, 3.0, 7, 0, head.data());
  EXPECT_TRUE(std::equal(shifted.begin(), shifted.end(), head.begin() + 8));
}

// Philox(seed 0) value 44126575 is 4294967244 / 2^32 = 0.99999998..., which rounds to
// 1.0f: a float32 draw must still stay below hi.
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

// ---- fill, arange, cast ----

TEST(CpuKernelsMemory, FillArangeCast) {
  for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{7}, kBig}) {
    std::vector<float> f(n + 1, -1.f);
    std::vector<double> d(n + 1, -1.0);
    std::vector<std::int64_t> i(n + 1, -1);
    cpu().fill(DType::Float32, n, 2.5, f.data());
    cpu().fill(DType::Float64, n, -0.125, d.data());
    cpu().fill(DType::Int64, n, 9.0, i.data());
    for (std::int64_t k = 0; k < n; ++k) {
      ASSERT_EQ(f[k], 2.5f);
      ASSERT_EQ(d[k], -0.125);
      ASSERT_EQ(i[k], 9);
    }
    EXPECT_EQ(f[n], -1.f);  // nothing past n is written
    EXPECT_EQ(i[n], -1);
    cpu().arange(DType::Int64, n, i.data());
    cpu().arange(DType::Float32, n, f.data());
    cpu().arange(DType::Float64, n, d.data());
    for (std::int64_t k = 0; k < n; ++k) {
      ASSERT_EQ(i[k], k);
      ASSERT_EQ(f[k], float(k));
      ASSERT_EQ(d[k], double(k));
    }
    // Casts between every pair.
    std::vector<double> src(n);
    for (std::int64_t k = 0; k < n; ++k) src[k] = (k % 13) * 0.75 - 4.4;
    std::vector<float> f2(n);
    std::vector<std::int64_t> i2(n);
    std::vector<double> d2(n);
    cpu().cast(DType::Float64, DType::Float32, n, src.data(), f2.data());
    cpu().cast(DType::Float64, DType::Int64, n, src.data(), i2.data());
    cpu().cast(DType::Int64, DType::Float64, n, i2.data(), d2.data());
    for (std::int64_t k = 0; k < n; ++k) {
      ASSERT_EQ(f2[k], float(src[k]));
      ASSERT_EQ(i2[k], std::int64_t(src[k]));  // truncation toward zero
      ASSERT_EQ(d2[k], double(i2[k]));
    }
    cpu().cast(DType::Float32, DType::Float64, n, f2.data(), d2.data());
    for (std::int64_t k = 0; k < n; ++k) ASSERT_EQ(d2[k], double(f2[k]));
    cpu().cast(DType::Float64, DType::Float64, n, src.data(), d2.data());
    EXPECT_EQ(d2, src);
  }
}

TEST(CpuKernelsMemory, AllocateAlignedAndCopies) {
  void* p = cpu().allocate(100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u);
  const std::vector<double> src = {1, 2, 3};
  std::vector<double> back(3);
  cpu().copy_from_host(p, src.data(), 24);
  cpu().copy(static_cast<char*>(p) + 32, p, 24);
  cpu().copy_to_host(back.data(), static_cast<char*>(p) + 32, 24);
  EXPECT_EQ(back, src);
  cpu().deallocate(p, 100);
  EXPECT_EQ(cpu().allocate(0), nullptr);
  cpu().deallocate(nullptr, 0);
  EXPECT_STREQ(cpu().name(), "cpu");
}

TEST(CpuKernelsMemory, FloatingKernelsRejectInt64) {
  std::vector<std::int64_t> x(3), y(3);
  EXPECT_THROW(cpu().unary(UnaryOp::Exp, DType::Int64, 3, 0, x.data(), y.data()), Unsupported);
}

// ---- optimizer steps ----

TYPED_TEST(CpuKernels, SgdStepMatchesReference) {
  using T = TypeParam;
  struct Case { SgdParams p; bool buffer; };
  std::vector<Case> cases;
  for (bool nesterov : {false, true})
    for (bool first : {true, false}) {
      SgdParams p;
      p.lr = 0.05;
      p.momentum = 0.9;
      p.dampening = nesterov ? 0.0 : 0.1;
      p.weight_decay = 0.01;
      p.nesterov = nesterov;
      p.first_step = first;
      cases.push_back({p, true});
    }
  SgdParams plain;
  plain.lr = 0.1;
  plain.weight_decay = 0.02;
  cases.push_back({plain, false});  // no momentum, no buffer
  for (const auto& c : cases)
    for (std::int64_t n : {std::int64_t{7}, kBig}) {
      auto w = random_vec<T>(n, -1, 1, 14);
      const auto g = random_vec<T>(n, -1, 1, 15);
      auto buf = random_vec<T>(n, -1, 1, 16);
      std::vector<double> ww(w.begin(), w.end()), wb(buf.begin(), buf.end());
      cpu().sgd_step(dt<T>(), n, c.p, w.data(), g.data(), c.buffer ? buf.data() : nullptr);
      for (std::int64_t i = 0; i < n; ++i) {
        double d = g[i] + c.p.weight_decay * ww[i];
        if (c.p.momentum != 0) {
          wb[i] = c.p.first_step ? d : c.p.momentum * wb[i] + (1 - c.p.dampening) * d;
          d = c.p.nesterov ? d + c.p.momentum * wb[i] : wb[i];
        }
        ww[i] -= c.p.lr * d;
      }
      const std::string what = "sgd nesterov=" + std::to_string(c.p.nesterov) +
                               " first=" + std::to_string(c.p.first_step) + " n=" + std::to_string(n);
      expect_near_all(w, ww, 4 * tol<T>(), what);
      if (c.buffer) expect_near_all(buf, wb, 4 * tol<T>(), what + " buffer");
    }
}

TYPED_TEST(CpuKernels, AdamWStepMatchesReference) {
  using T = TypeParam;
  for (std::int64_t step : {1, 2, 10})
    for (std::int64_t n : {std::int64_t{7}, kBig}) {
      AdamWParams p;
      p.lr = 1e-2;
      p.beta1 = 0.85;
      p.beta2 = 0.99;
      p.eps = 1e-6;
      p.weight_decay = 0.1;
      p.step = step;
      auto w = random_vec<T>(n, -1, 1, 17);
      const auto g = random_vec<T>(n, -1, 1, 18);
      auto m = random_vec<T>(n, -0.1, 0.1, 19);
      auto v = random_vec<T>(n, 0, 0.1, 20);
      std::vector<double> ww(w.begin(), w.end()), wm(m.begin(), m.end()), wv(v.begin(), v.end());
      cpu().adamw_step(dt<T>(), n, p, w.data(), g.data(), m.data(), v.data());
      for (std::int64_t i = 0; i < n; ++i) {
        ww[i] *= 1 - p.lr * p.weight_decay;
        wm[i] = p.beta1 * wm[i] + (1 - p.beta1) * g[i];
        wv[i] = p.beta2 * wv[i] + (1 - p.beta2) * double(g[i]) * g[i];
        const double mhat = wm[i] / (1 - std::pow(p.beta1, step));
        const double vhat = wv[i] / (1 - std::pow(p.beta2, step));
        ww[i] -= p.lr * mhat / (std::sqrt(vhat) + p.eps);
      }
      const std::string what = "adamw step=" + std::to_string(step) + " n=" + std::to_string(n);
      expect_near_all(w, ww, 8 * tol<T>(), what);
      expect_near_all(m, wm, 4 * tol<T>(), what + " m");
      expect_near_all(v, wv, 4 * tol<T>(), what + " v");
    }
}

}  // namespace
}  // namespace shrink::kernels
