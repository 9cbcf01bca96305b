// Ops forward values against plain reference loops on odd shapes (float32), and the
// errors they throw: every message names the op and the offending shapes or values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "core/shrink.h"

namespace shrink {
namespace {

std::vector<float> random_floats(std::int64_t n, float lo, float hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

Tensor random_tensor(const Shape& s, std::uint64_t seed, float lo = -2.f, float hi = 2.f) {
  return Tensor::from_vector(random_floats(numel(s), lo, hi, seed), s);
}

std::vector<std::int64_t> unravel(std::int64_t flat, const Shape& s) {
  std::vector<std::int64_t> idx(s.size());
  for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  return idx;
}

// Flat offset into a tensor of shape `s` for output coordinates `idx` (right-aligned,
// size-1 axes broadcast).
std::int64_t broadcast_offset(const std::vector<std::int64_t>& idx, const Shape& s) {
  std::int64_t off = 0;
  const size_t lead = idx.size() - s.size();
  for (size_t d = 0; d < s.size(); ++d) off = off * s[d] + (s[d] == 1 ? 0 : idx[lead + d]);
  return off;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rtol,
                  double atol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], atol + rtol * std::abs(want[i])) << what << " at " << i;
}

// ---- elementwise ----

TEST(OpsForward, BinaryBroadcastMatchesReference) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 5, 7}, {3, 5, 7}},
      {{3, 5, 7}, {7}},
      {{3, 5, 7}, {5, 1}},
      {{3, 1, 7}, {1, 5, 7}},
      {{7}, {3, 5, 7}},
      {{}, {3, 5, 7}},
      {{3, 5, 7}, {}},
      {{3, 5, 1}, {3, 1, 7}},
      {{2, 3, 1, 5, 1}, {3, 4, 1, 6}},
      {{1, 3, 5, 7}, {3, 1, 7}},
      {{65, 37, 17}, {37, 1}},          // > 32768 outputs: the threaded path
      {{40001}, {40001}},               // one long row
      {{33, 1, 1037}, {33, 3, 1}},      // threaded, both broadcast
      {{2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, {2, 2, 2, 2, 2, 2, 2, 2, 2, 2}},  // 10-D, all mergeable
      {{2, 3, 2, 3, 2, 3, 2, 3, 2}, {2, 3, 2, 3, 2, 3, 2, 1, 1}},        // 9-D, collapses to 2
      {{2, 3, 2, 3, 2, 3, 2, 3}, {2, 1, 2, 1, 2, 1, 2, 1}},              // 8 non-mergeable axes
  };
  struct Op {
    const char* name;
    Tensor (*fn)(const Tensor&, const Tensor&);
    double (*ref)(double, double);
  };
  const Op ops[] = {{"add", add, [](double a, double b) { return a + b; }},
                    {"sub", sub, [](double a, double b) { return a - b; }},
                    {"mul", mul, [](double a, double b) { return a * b; }},
                    {"div", div, [](double a, double b) { return a / b; }}};
  std::uint64_t seed = 1;
  for (const auto& [sa, sb] : cases)
    for (const Op& op : ops) {
      const std::string what = std::string(op.name) + " " + shape_str(sa) + " " + shape_str(sb);
      Tensor a = random_tensor(sa, seed++);
      Tensor b = random_tensor(sb, seed++, 0.5f, 2.f);
      Tensor out;
      ASSERT_NO_THROW(out = op.fn(a, b)) << what;
      const Shape so = broadcast_shapes("test", sa, sb);
      ASSERT_EQ(out.shape(), so) << what;
      const auto av = a.to_vector<float>(), bv = b.to_vector<float>();
      std::vector<double> want(static_cast<size_t>(numel(so)));
      for (std::int64_t i = 0; i < numel(so); ++i) {
        const auto idx = unravel(i, so);
        want[i] = op.ref(av[broadcast_offset(idx, sa)], bv[broadcast_offset(idx, sb)]);
      }
      expect_close(out.to_vector<float>(), want, 1e-6, 1e-6, what);
    }
}

TEST(OpsForward, ScalarFormsAndOperators) {
  Tensor x = random_tensor({3, 5, 7}, 3);
  const auto xv = x.to_vector<float>();
  std::vector<double> want(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) want[i] = (2.0 * xv[i] - 1.5) / 4.0;
  expect_close(((2.0 * x - 1.5) / 4.0).to_vector<float>(), want, 1e-6, 1e-6, "operators");
  for (size_t i = 0; i < xv.size(); ++i) want[i] = -xv[i];
  expect_close(neg(x).to_vector<float>(), want, 0, 0, "neg");
  for (size_t i = 0; i < xv.size(); ++i) want[i] = xv[i] + 0.25;
  expect_close(add_scalar(x, 0.25).to_vector<float>(), want, 1e-7, 1e-7, "add_scalar");
  for (size_t i = 0; i < xv.size(); ++i) want[i] = xv[i] * -3.0;
  expect_close(mul_scalar(x, -3.0).to_vector<float>(), want, 1e-7, 1e-7, "mul_scalar");
}

TEST(OpsForward, PointwiseMatchesReference) {
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> op;
    std::function<double(double)> ref;
    float lo, hi;
  };
  const std::vector<Case> cases = {
      {"exp", [](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }, -3, 3},
      {"log", [](const Tensor& x) { return log(x); }, [](double v) { return std::log(v); }, 0.1f, 5},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, 0, 5},
      {"pow", [](const Tensor& x) { return pow(x, 1.7); }, [](double v) { return std::pow(v, 1.7); }, 0.1f, 3},
      {"pow_int", [](const Tensor& x) { return pow(x, 3.0); }, [](double v) { return v * v * v; }, -2, 2},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double v) { return std::abs(v); }, -3, 3},
      {"square", [](const Tensor& x) { return square(x); }, [](double v) { return v * v; }, -3, 3},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0; }, -3, 3},
      {"relu6", [](const Tensor& x) { return relu6(x); },
       [](double v) { return std::min(std::max(v, 0.0), 6.0); }, -3, 9},
      {"gelu", [](const Tensor& x) { return gelu(x); },
       [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }, -4, 4},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, -4, 4},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); },
       [](double v) { return 1 / (1 + std::exp(-v)); }, -6, 6},
  };
  for (const auto& c : cases)
    for (const Shape& s : {Shape{3, 5, 7}, Shape{41, 1001}}) {
      Tensor x = random_tensor(s, 17, c.lo, c.hi);
      const auto xv = x.to_vector<float>();
      std::vector<double> want(xv.size());
      for (size_t i = 0; i < xv.size(); ++i) want[i] = c.ref(xv[i]);
      Tensor y = c.op(x);
      EXPECT_EQ(y.dtype(), DType::Float32);
      expect_close(y.to_vector<float>(), want, 2e-6, 2e-6, c.name);
    }
}

// ---- matrix products ----

// Reference (batch, m, k) @ (batch, k, n) with a stride of 0 broadcasting an operand.
std::vector<double> batched_reference(const std::vector<float>& a, std::int64_t sa,
                                      const std::vector<float>& b, std::int64_t sb,
                                      std::int64_t batch, std::int64_t m, std::int64_t k,
                                      std::int64_t n) {
  std::vector<double> c(static_cast<size_t>(batch * m * n));
  for (std::int64_t p = 0; p < batch; ++p)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (std::int64_t q = 0; q < k; ++q) acc += double(a[p * sa + i * k + q]) * b[p * sb + q * n + j];
        c[(p * m + i) * n + j] = acc;
      }
  return c;
}

TEST(OpsForward, MatmulMatchesReference) {
  struct Case {
    Shape a, b, out;
    std::int64_t batch;
    bool broadcast_a, broadcast_b;
  };
  const std::vector<Case> cases = {
      {{3, 5}, {5, 7}, {3, 7}, 1, false, false},
      {{2, 3, 5}, {5, 7}, {2, 3, 7}, 2, false, true},
      {{2, 3, 5}, {2, 5, 7}, {2, 3, 7}, 2, false, false},
      {{3, 5}, {2, 5, 7}, {2, 3, 7}, 2, true, false},
      {{2, 3, 3, 5}, {2, 3, 5, 7}, {2, 3, 3, 7}, 6, false, false},
      {{67, 33}, {33, 65}, {67, 65}, 1, false, false},
  };
  for (const auto& c : cases) {
    Tensor a = random_tensor(c.a, 5), b = random_tensor(c.b, 6);
    Tensor out = matmul(a, b);
    ASSERT_EQ(out.shape(), c.out) << shape_str(c.a) << "@" << shape_str(c.b);
    const std::int64_t m = c.a[c.a.size() - 2], k = c.a.back(), n = c.b.back();
    std::int64_t batch = c.batch, sa = c.broadcast_a ? 0 : m * k, sb = c.broadcast_b ? 0 : k * n;
    if (c.broadcast_b) {  // (..., m, k) @ (k, n) is one GEMM over all leading rows
      sa = m * k;
    }
    const auto want = batched_reference(a.to_vector<float>(), sa, b.to_vector<float>(), sb, batch, m, k, n);
    expect_close(out.to_vector<float>(), want, 1e-5, 1e-5, "matmul " + shape_str(c.a) + "@" + shape_str(c.b));
  }
}

TEST(OpsForward, LinearMatchesReference) {
  for (bool with_bias : {true, false}) {
    Tensor x = random_tensor({2, 3, 5}, 8), w = random_tensor({7, 5}, 9), b = random_tensor({7}, 10);
    Tensor y = linear(x, w, with_bias ? b : Tensor());
    ASSERT_EQ(y.shape(), (Shape{2, 3, 7}));
    const auto xv = x.to_vector<float>(), wv = w.to_vector<float>(), bv = b.to_vector<float>();
    std::vector<double> want(2 * 3 * 7);
    for (int r = 0; r < 6; ++r)
      for (int o = 0; o < 7; ++o) {
        double acc = with_bias ? bv[o] : 0.0;
        for (int i = 0; i < 5; ++i) acc += double(xv[r * 5 + i]) * wv[o * 5 + i];
        want[r * 7 + o] = acc;
      }
    expect_close(y.to_vector<float>(), want, 1e-5, 1e-5, with_bias ? "linear+bias" : "linear");
  }
}

// ---- reductions ----

// Reference sum/max over a set of axes of (3, 5, 7)-like tensors via coordinates.
std::vector<double> reduce_reference(const std::vector<float>& x, const Shape& s,
                                     const std::vector<int>& axes, bool is_max) {
  Shape kept = s;
  for (int a : axes) kept[a] = 1;
  std::vector<double> out(static_cast<size_t>(numel(kept)), is_max ? -1e300 : 0.0);
  for (std::int64_t i = 0; i < numel(s); ++i) {
    auto idx = unravel(i, s);
    for (int a : axes) idx[a] = 0;
    std::int64_t o = 0;
    for (size_t d = 0; d < s.size(); ++d) o = o * kept[d] + idx[d];
    out[o] = is_max ? std::max(out[o], double(x[i])) : out[o] + x[i];
  }
  return out;
}

TEST(OpsForward, SumMeanMatchReference) {
  const Shape s = {3, 5, 7};
  Tensor x = random_tensor(s, 11);
  const auto xv = x.to_vector<float>();
  const std::vector<std::vector<int>> axis_sets = {{0}, {1}, {2}, {0, 2}, {2, 0}, {0, 1, 2}};
  for (const auto& axes : axis_sets) {
    std::vector<std::int64_t> ax(axes.begin(), axes.end());
    const auto want = reduce_reference(xv, s, axes, false);
    for (bool keepdim : {false, true}) {
      Tensor y = sum(x, ax, keepdim);
      Shape expected;
      for (int d = 0; d < 3; ++d) {
        const bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
        if (!reduced) expected.push_back(s[d]);
        else if (keepdim) expected.push_back(1);
      }
      EXPECT_EQ(y.shape(), expected);
      expect_close(y.to_vector<float>(), want, 1e-5, 1e-5, "sum");
      std::int64_t count = 1;
      for (int a : axes) count *= s[a];
      std::vector<double> mean_want(want);
      for (auto& v : mean_want) v /= double(count);
      expect_close(mean(x, ax, keepdim).to_vector<float>(), mean_want, 1e-5, 1e-6, "mean");
    }
  }
  Tensor total = sum(x);
  EXPECT_EQ(total.shape(), Shape{});
  EXPECT_NEAR(total.item(), reduce_reference(xv, s, {0, 1, 2}, false)[0], 1e-4);
  EXPECT_NEAR(mean(x).item(), reduce_reference(xv, s, {0, 1, 2}, false)[0] / 105.0, 1e-6);
  EXPECT_NEAR(sum(x, {-1}).to_vector<float>()[0], reduce_reference(xv, s, {2}, false)[0], 1e-5);
  // Large enough for the threaded paths (inner == 1 and inner > 1).
  const Shape big = {37, 1025, 3};
  Tensor xb = random_tensor(big, 12);
  const auto xbv = xb.to_vector<float>();
  for (int axis : {0, 1, 2})
    expect_close(sum(xb, {axis}).to_vector<float>(), reduce_reference(xbv, big, {axis}, false), 1e-5,
                 1e-4, "sum big axis " + std::to_string(axis));
}

TEST(OpsForward, MaxAndArgmaxMatchReference) {
  const Shape s = {3, 5, 7};
  Tensor x = random_tensor(s, 13);
  const auto xv = x.to_vector<float>();
  for (int axis : {0, 1, 2}) {
    const auto want = reduce_reference(xv, s, {axis}, true);
    Tensor m = max(x, axis);
    expect_close(m.to_vector<float>(), want, 0, 0, "max");
    EXPECT_EQ(max(x, axis, true).shape(), [&] { Shape k = s; k[axis] = 1; return k; }());
    Tensor am = argmax(x, axis);
    EXPECT_EQ(am.dtype(), DType::Int64);
    EXPECT_EQ(am.shape(), m.shape());
    const auto amv = am.to_vector<std::int64_t>();
    // The element at the argmax is the max.
    Shape kept = s;
    kept[axis] = 1;
    for (std::int64_t o = 0; o < numel(kept); ++o) {
      auto idx = unravel(o, kept);
      idx[axis] = amv[o];
      std::int64_t flat = 0;
      for (int d = 0; d < 3; ++d) flat = flat * s[d] + idx[d];
      EXPECT_EQ(double(xv[flat]), want[o]);
    }
  }
  // Ties: the first maximum wins.
  Tensor t = Tensor::from_vector(std::vector<float>{1, 3, 3, 0, 2, 2, 2, 1}, {2, 4});
  EXPECT_EQ(argmax(t, 1).to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 0}));
  EXPECT_EQ(argmax(t, 1, true).shape(), (Shape{2, 1}));
}

TEST(OpsForward, AccuracyCountsArgmaxHits) {
  Tensor logits = Tensor::from_vector(std::vector<float>{0, 1, 5, 2, 9, 1, 3, 3, 1}, {3, 3});
  Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{2, 1, 1}, {3});
  EXPECT_DOUBLE_EQ(accuracy(logits, labels), 2.0 / 3.0);  // row 2 ties -> index 0
}

// ---- softmax family ----

TEST(OpsForward, SoftmaxAndLogSoftmaxMatchReference) {
  const Shape s = {3, 5, 7};
  Tensor x = random_tensor(s, 14, -5, 5);
  const auto xv = x.to_vector<float>();
  for (int axis : {0, 1, 2, -1}) {
    const int a = axis < 0 ? axis + 3 : axis;
    std::vector<double> sm(xv.size()), lsm(xv.size());
    for (std::int64_t i = 0; i < numel(s); ++i) {
      auto idx = unravel(i, s);
      double total = 0;
      for (std::int64_t j = 0; j < s[a]; ++j) {
        auto k = idx;
        k[a] = j;
        total += std::exp(double(xv[(k[0] * s[1] + k[1]) * s[2] + k[2]]));
      }
      sm[i] = std::exp(double(xv[i])) / total;
      lsm[i] = double(xv[i]) - std::log(total);
    }
    expect_close(softmax(x, axis).to_vector<float>(), sm, 1e-5, 1e-7, "softmax");
    expect_close(log_softmax(x, axis).to_vector<float>(), lsm, 1e-5, 1e-5, "log_softmax");
  }
  // Large logits do not overflow (max subtraction).
  Tensor big = Tensor::from_vector(std::vector<float>{1000, 1001, 999}, {1, 3});
  const auto p = softmax(big).to_vector<float>();
  for (float v : p) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(p[1], std::exp(1.0) / (1 + std::exp(1.0) + std::exp(-1.0)), 1e-6);
}

TEST(OpsForward, CrossEntropyMatchesReference) {
  const std::int64_t n = 5, c = 7;
  Tensor logits = random_tensor({n, c}, 15, -3, 3);
  const std::vector<std::int64_t> lab = {0, 6, 3, 3, 1};
  Tensor labels = Tensor::from_vector(lab, {n});
  const auto z = logits.to_vector<float>();
  for (double eps : {0.0, 0.1, 1.0}) {
    double loss = 0;
    for (std::int64_t r = 0; r < n; ++r) {
      double total = 0;
      for (std::int64_t j = 0; j < c; ++j) total += std::exp(double(z[r * c + j]));
      for (std::int64_t j = 0; j < c; ++j) {
        const double target = (j == lab[r] ? 1 - eps : 0.0) + eps / c;
        loss -= target * (z[r * c + j] - std::log(total));
      }
    }
    Tensor out = cross_entropy(logits, labels, eps);
    EXPECT_EQ(out.shape(), Shape{});
    EXPECT_NEAR(out.item(), loss / n, 1e-5) << "smoothing " << eps;
  }
}

// ---- dropout ----

TEST(OpsForward, DropoutScalesKeptElementsAndIsSeeded) {
  Tensor x = random_tensor({31, 1033}, 16);  // > 32768 elements
  const double p = 0.25;
  Generator g1(5), g2(5);
  Tensor y1 = dropout(x, p, true, g1), y2 = dropout(x, p, true, g2);
  EXPECT_EQ(y1.to_vector<float>(), y2.to_vector<float>());  // same seed, same mask
  Tensor y3 = dropout(x, p, true, g1);                        // the generator moved on
  EXPECT_NE(y1.to_vector<float>(), y3.to_vector<float>());
  const auto xv = x.to_vector<float>(), yv = y1.to_vector<float>();
  std::int64_t kept = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0.f) continue;
    ++kept;
    ASSERT_NEAR(yv[i], xv[i] / (1 - p), 1e-5 * std::abs(xv[i]) + 1e-7);
  }
  EXPECT_NEAR(double(kept) / double(xv.size()), 1 - p, 0.01);
  // Eval mode and p == 0 are the identity.
  EXPECT_EQ(dropout(x, p, false, g1).to_vector<float>(), xv);
  EXPECT_EQ(dropout(x, 0.0, true, g1).to_vector<float>(), xv);
}

// ---- layout ----

TEST(OpsForward, ReshapeAndFlatten) {
  Tensor x = random_tensor({3, 5, 7}, 17);
  Tensor r = reshape(x, {7, -1});
  EXPECT_EQ(r.shape(), (Shape{7, 15}));
  EXPECT_EQ(r.raw_data(), x.raw_data());  // a view
  EXPECT_EQ(r.to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(flatten(x).shape(), (Shape{3, 35}));
  EXPECT_EQ(flatten(x, 0).shape(), (Shape{105}));
  EXPECT_EQ(flatten(x, 2).shape(), (Shape{3, 5, 7}));
  EXPECT_EQ(flatten(x, -2).shape(), (Shape{3, 35}));
}

TEST(OpsForward, ExpandMatchesReference) {
  for (const auto& [from, to] : std::vector<std::pair<Shape, Shape>>{
           {{5, 1}, {3, 5, 7}}, {{7}, {3, 5, 7}}, {{}, {3, 5}}, {{3, 1, 7}, {3, 5, 7}},
           {{1, 1037}, {37, 1037}}}) {
    Tensor x = random_tensor(from, 18);
    const auto xv = x.to_vector<float>();
    Tensor y = expand(x, to);
    ASSERT_EQ(y.shape(), to);
    std::vector<double> want(static_cast<size_t>(numel(to)));
    for (std::int64_t i = 0; i < numel(to); ++i) want[i] = xv[broadcast_offset(unravel(i, to), from)];
    expect_close(y.to_vector<float>(), want, 0, 0, "expand " + shape_str(from));
  }
}

TEST(OpsForward, PermuteAndTransposeMatchReference) {
  for (const Shape& s : {Shape{3, 5, 7}, Shape{33, 37, 29}}) {
    Tensor x = random_tensor(s, 19);
    const auto xv = x.to_vector<float>();
    const std::vector<std::vector<std::int64_t>> orders = {{2, 0, 1}, {1, 2, 0}, {0, 2, 1}, {0, 1, 2}};
    for (const auto& order : orders) {
      Tensor y = permute(x, order);
      Shape out = {s[order[0]], s[order[1]], s[order[2]]};
      ASSERT_EQ(y.shape(), out);
      const auto yv = y.to_vector<float>();
      for (std::int64_t i = 0; i < numel(out); ++i) {
        const auto o = unravel(i, out);
        std::vector<std::int64_t> in(3);
        for (int d = 0; d < 3; ++d) in[order[d]] = o[d];
        ASSERT_EQ(yv[i], xv[(in[0] * s[1] + in[1]) * s[2] + in[2]]);
      }
    }
    Tensor t = transpose(x, 0, -1);
    EXPECT_EQ(t.shape(), (Shape{s[2], s[1], s[0]}));
    EXPECT_EQ(t.to_vector<float>(), permute(x, {2, 1, 0}).to_vector<float>());
  }
}

TEST(OpsForward, ConcatMatchesReference) {
  Tensor a = random_tensor({3, 2, 7}, 20), b = random_tensor({3, 5, 7}, 21), c = random_tensor({3, 1, 7}, 22);
  Tensor y = concat({a, b, c}, 1);
  ASSERT_EQ(y.shape(), (Shape{3, 8, 7}));
  const auto av = a.to_vector<float>(), bv = b.to_vector<float>(), cv = c.to_vector<float>();
  const auto yv = y.to_vector<float>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 8; ++j)
      for (int k = 0; k < 7; ++k) {
        const float want = j < 2 ? av[(i * 2 + j) * 7 + k]
                                 : j < 7 ? bv[(i * 5 + j - 2) * 7 + k] : cv[i * 7 + k];
        ASSERT_EQ(yv[(i * 8 + j) * 7 + k], want);
      }
  Tensor z = concat({a, a}, 0);
  EXPECT_EQ(z.shape(), (Shape{6, 2, 7}));
  std::vector<float> twice = av;
  twice.insert(twice.end(), av.begin(), av.end());
  EXPECT_EQ(z.to_vector<float>(), twice);
  EXPECT_EQ(concat({a}, -1).to_vector<float>(), av);
}

TEST(OpsForward, SliceAndIndexSelectMatchReference) {
  const Shape s = {3, 11, 7};
  Tensor x = random_tensor(s, 23);
  const auto xv = x.to_vector<float>();
  auto check_rows = [&](const Tensor& y, const std::vector<std::int64_t>& rows, const char* what) {
    ASSERT_EQ(y.shape(), (Shape{3, static_cast<std::int64_t>(rows.size()), 7})) << what;
    const auto yv = y.to_vector<float>();
    for (int i = 0; i < 3; ++i)
      for (size_t j = 0; j < rows.size(); ++j)
        for (int k = 0; k < 7; ++k)
          ASSERT_EQ(yv[(i * rows.size() + j) * 7 + k], xv[(i * 11 + rows[j]) * 7 + k]) << what;
  };
  check_rows(slice(x, 1, 1, 10, 3), {1, 4, 7}, "slice step 3");
  check_rows(slice(x, 1, 2, 100), {2, 3, 4, 5, 6, 7, 8, 9, 10}, "slice end clamps");
  check_rows(slice(x, 1, -3, -1), {8, 9}, "slice negative");
  check_rows(slice(x, 1, 5, 5), {}, "slice empty");
  const std::vector<std::int64_t> idx = {10, 0, 10, 3, 3};
  check_rows(index_select(x, 1, Tensor::from_vector(idx, {5})), idx, "index_select repeated");
  Tensor first = index_select(x, 0, Tensor::from_vector(std::vector<std::int64_t>{2, 0}, {2}));
  EXPECT_EQ(first.shape(), (Shape{2, 11, 7}));
  EXPECT_EQ(first.to_vector<float>()[0], xv[2 * 77]);
  // int64 data moves too.
  Tensor ints = Tensor::arange(10);
  EXPECT_EQ(index_select(ints, 0, Tensor::from_vector(std::vector<std::int64_t>{9, 1}, {2}))
                .to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{9, 1}));
}

// ---- errors: the message names the op and the shapes ----

void expect_error(const std::function<void()>& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "no shrink::Error thrown; expected one mentioning " << *parts.begin();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-shrink::Error: " << e.what();
  }
}

TEST(OpsErrors, ShapeMismatchesNameOpAndShapes) {
  Tensor a23 = Tensor::zeros({2, 3}), a45 = Tensor::zeros({4, 5});
  expect_error([&] { matmul(a23, a45); }, {"matmul", "(2, 3)", "(4, 5)"});
  expect_error([&] { matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4})); },
               {"matmul", "(2, 2, 3)", "(3, 3, 4)"});
  expect_error([&] { matmul(Tensor::zeros({3}), a23); }, {"matmul", "(3,)"});
  expect_error([&] { add(a23, a45); }, {"add", "(2, 3)", "(4, 5)"});
  expect_error([&] { sub(a23, Tensor::zeros({4})); }, {"sub", "(2, 3)", "(4,)"});
  expect_error([&] { mul(a23, Tensor::zeros({3, 3})); }, {"mul", "(2, 3)", "(3, 3)"});
  expect_error([&] { div(a23, Tensor::zeros({2})); }, {"div", "(2, 3)", "(2,)"});
  expect_error([&] { linear(a23, a45, Tensor()); }, {"linear", "(2, 3)", "(4, 5)"});
  expect_error([&] { linear(a23, Tensor::zeros({4, 3}), Tensor::zeros({5})); }, {"linear", "(5,)"});
  expect_error([&] { expand(a23, {4, 3}); }, {"expand", "(2, 3)", "(4, 3)"});
  expect_error([&] { concat({a23, a45}, 0); }, {"concat", "(4, 5)", "(2, 3)"});
  expect_error([&] { concat({a23, Tensor::zeros({2, 3, 1})}, 0); }, {"concat", "rank"});
  expect_error([&] { concat({}, 0); }, {"concat"});
  expect_error([&] { reshape(a23, {4, 2}); }, {"reshape", "(2, 3)", "(4, 2)"});
  expect_error([&] { permute(a23, {0}); }, {"permute", "(2, 3)"});
  expect_error([&] { cross_entropy(Tensor::zeros({3, 4}), Tensor::zeros({2}, DType::Int64)); },
               {"cross_entropy", "(2,)", "(3, 4)"});
  expect_error([&] { cross_entropy(Tensor::zeros({3}), Tensor::zeros({3}, DType::Int64)); },
               {"cross_entropy", "(3,)"});
}

TEST(OpsErrors, BadAxes) {
  Tensor x = Tensor::zeros({3, 5, 7});
  expect_error([&] { sum(x, {3}); }, {"sum", "axis 3"});
  expect_error([&] { sum(x, {-4}); }, {"sum", "axis -4"});
  expect_error([&] { sum(x, {1, -2}); }, {"sum", "repeated"});
  expect_error([&] { mean(x, {5}); }, {"mean", "axis 5"});
  expect_error([&] { max(x, 3); }, {"max", "axis 3"});
  expect_error([&] { argmax(x, -5); }, {"argmax", "axis -5"});
  expect_error([&] { softmax(x, 3); }, {"softmax", "axis 3"});
  expect_error([&] { log_softmax(x, -4); }, {"log_softmax", "axis -4"});
  expect_error([&] { transpose(x, 0, 3); }, {"transpose", "axis 3"});
  expect_error([&] { permute(x, {0, 1, 1}); }, {"permute", "repeated"});
  expect_error([&] { permute(x, {0, 1, 3}); }, {"permute", "axis 3"});
  expect_error([&] { concat({x, x}, 3); }, {"concat", "axis 3"});
  expect_error([&] { slice(x, 3, 0, 1); }, {"slice", "axis 3"});
  expect_error([&] { slice(x, 0, 0, 1, 0); }, {"slice", "step"});
  expect_error([&] { slice(x, 0, 4, 5); }, {"slice", "start 4"});
  expect_error([&] { flatten(x, 3); }, {"flatten", "axis 3"});
  expect_error([&] { x.size(3); }, {"axis 3"});
  expect_error([&] { max(Tensor::zeros({3, 0}), 1); }, {"max", "empty"});
}

TEST(OpsErrors, IndexAndLabelRanges) {
  Tensor x = Tensor::zeros({3, 5});
  auto idx = [](std::vector<std::int64_t> v) {
    return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())});
  };
  expect_error([&] { index_select(x, 1, idx({0, 5})); }, {"index_select", "index 5", "(3, 5)"});
  expect_error([&] { index_select(x, 0, idx({-1})); }, {"index_select", "index -1"});
  expect_error([&] { index_select(x, 0, Tensor::zeros({2})); }, {"index_select", "int64"});
  expect_error([&] { index_select(x, 0, Tensor::zeros({1, 1}, DType::Int64)); }, {"index_select", "(1, 1)"});
  expect_error([&] { cross_entropy(x, idx({0, 5, 1})); }, {"cross_entropy", "label 5", "5 classes"});
  expect_error([&] { cross_entropy(x, idx({0, -1, 1})); }, {"cross_entropy", "label -1"});
  expect_error([&] { cross_entropy(x, Tensor::zeros({3})); }, {"cross_entropy", "int64", "float32"});
  expect_error([&] { cross_entropy(x, idx({0, 1, 2}), 1.5); }, {"cross_entropy", "label_smoothing"});
  Generator gen(0);
  expect_error([&] { dropout(x, 1.0, true, gen); }, {"dropout", "p"});
  expect_error([&] { dropout(x, -0.1, true, gen); }, {"dropout", "p"});
  expect_error([&] { accuracy(x, idx({0})); }, {"accuracy", "(3, 5)", "(1,)"});
}

TEST(OpsErrors, MismatchedDtypes) {
  Tensor f = Tensor::zeros({2, 3}), d = Tensor::zeros({2, 3}, DType::Float64);
  Tensor i = Tensor::zeros({2, 3}, DType::Int64);
  expect_error([&] { add(f, d); }, {"add", "float32", "float64"});
  expect_error([&] { mul(d, f); }, {"mul", "float64", "float32"});
  expect_error([&] { matmul(f, Tensor::zeros({3, 2}, DType::Float64)); }, {"matmul", "float32", "float64"});
  expect_error([&] { linear(f, Tensor::zeros({4, 3}, DType::Float64), Tensor()); }, {"linear", "float64"});
  expect_error([&] { concat({f, d}, 0); }, {"concat", "float32", "float64"});
  expect_error([&] { add(i, i); }, {"add", "int64"});
  expect_error([&] { exp(i); }, {"exp", "int64"});
  expect_error([&] { sum(i); }, {"sum", "int64"});
  expect_error([&] { softmax(i); }, {"softmax", "int64"});
  expect_error([&] { add(Tensor(), f); }, {"add", "undefined"});
}

TEST(OpsForward, Float64MatchesFloat32) {
  Tensor x = random_tensor({3, 5, 7}, 24), w = random_tensor({4, 7}, 25);
  auto net = [](const Tensor& a, const Tensor& b) {
    return softmax(gelu(linear(a, b, Tensor())), 1);
  };
  const auto f32 = net(x, w).to_vector<float>();
  const auto f64 = net(x.to(DType::Float64), w.to(DType::Float64)).to_vector<double>();
  expect_close(f32, f64, 1e-5, 1e-6, "float32 vs float64");
}

}  // namespace
}  // namespace shrink
