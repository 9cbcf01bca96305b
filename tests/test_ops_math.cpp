// Matrix products, reductions, softmax and cross-entropy: forward values on odd and large
// shapes (float32) against kernels/reference/ (gemm, reduce, softmax), beyond the op table's
// small shapes; argmax ties and accuracy.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/shrink.h"
#include "tests/op_table.h"
#include "tests/test_helpers.h"

namespace shrink::testing {
namespace {

std::vector<std::int64_t> unravel(std::int64_t flat, const Shape& s) {
  std::vector<std::int64_t> idx(s.size());
  for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  return idx;
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
    std::vector<double> want(static_cast<size_t>(batch * m * n));
    kernels::reference::gemm(false, false, m, n, k, 1.0, values_of(a).data(), k, sa,
                             values_of(b).data(), n, sb, 0.0, want.data(), n, m * n, batch);
    EXPECT_TRUE(all_close("matmul " + shape_str(c.a) + "@" + shape_str(c.b), out.to_vector<float>(), want, 1e-5, 1e-5));
  }
}

TEST(OpsForward, LinearMatchesReference) {
  for (bool with_bias : {true, false}) {
    Tensor x = random_tensor({2, 3, 5}, 8), w = random_tensor({7, 5}, 9), b = random_tensor({7}, 10);
    Tensor y = linear(x, w, with_bias ? b : Tensor());
    ASSERT_EQ(y.shape(), (Shape{2, 3, 7}));
    // want (6, 7) = x (6, 5) w^T + b: the bias rows first, then gemm with beta 1.
    std::vector<double> want(2 * 3 * 7, 0.0);
    const auto bv = values_of(b);
    for (int r = 0; r < 6 && with_bias; ++r) std::copy(bv.begin(), bv.end(), want.begin() + r * 7);
    kernels::reference::gemm(false, true, 6, 7, 5, 1.0, values_of(x).data(), 5, 0,
                             values_of(w).data(), 5, 0, 1.0, want.data(), 7, 0, 1);
    EXPECT_TRUE(all_close(with_bias ? "linear+bias" : "linear", y.to_vector<float>(), want, 1e-5, 1e-5));
  }
}

TEST(OpsForward, SumMeanMatchReference) {
  const Shape s = {3, 5, 7};
  Tensor x = random_tensor(s, 11);
  const std::vector<RefInput> xr = {{s, values_of(x)}};
  const std::vector<std::vector<int>> axis_sets = {{0}, {1}, {2}, {0, 2}, {2, 0}, {0, 1, 2}};
  for (const auto& axes : axis_sets) {
    std::vector<std::int64_t> ax(axes.begin(), axes.end());
    const auto want = op_reference::sum(ax, false)(xr);
    for (bool keepdim : {false, true}) {
      Tensor y = sum(x, ax, keepdim);
      Shape expected;
      for (int d = 0; d < 3; ++d) {
        const bool reduced = std::find(axes.begin(), axes.end(), d) != axes.end();
        if (!reduced) expected.push_back(s[d]);
        else if (keepdim) expected.push_back(1);
      }
      EXPECT_EQ(y.shape(), expected);
      EXPECT_TRUE(all_close("sum", y.to_vector<float>(), want, 1e-5, 1e-5));
      std::int64_t count = 1;
      for (int a : axes) count *= s[a];
      std::vector<double> mean_want(want);
      for (auto& v : mean_want) v /= double(count);
      EXPECT_TRUE(all_close("mean", mean(x, ax, keepdim).to_vector<float>(), mean_want, 1e-6, 1e-5));
    }
  }
  Tensor total = sum(x);
  EXPECT_EQ(total.shape(), Shape{});
  EXPECT_NEAR(total.item(), op_reference::sum({}, false)(xr)[0], 1e-4);
  EXPECT_NEAR(mean(x).item(), op_reference::sum({}, true)(xr)[0], 1e-6);
  EXPECT_NEAR(sum(x, {-1}).to_vector<float>()[0], op_reference::sum({2}, false)(xr)[0], 1e-5);
  // Large enough for the threaded paths (inner == 1 and inner > 1).
  const Shape big = {37, 1025, 3};
  Tensor xb = random_tensor(big, 12);
  const std::vector<RefInput> xbr = {{big, values_of(xb)}};
  for (int axis : {0, 1, 2})
    EXPECT_TRUE(all_close("sum big axis " + std::to_string(axis), sum(xb, {axis}).to_vector<float>(),
                          op_reference::sum({axis}, false)(xbr), 1e-4, 1e-5));
}

TEST(OpsForward, MaxAndArgmaxMatchReference) {
  const Shape s = {3, 5, 7};
  Tensor x = random_tensor(s, 13);
  const auto xv = x.to_vector<float>();  // argmax picks one of these
  for (std::int64_t axis : {0, 1, 2}) {
    const auto want = op_reference::max(axis)({{s, values_of(x)}});
    Tensor m = max(x, axis);
    EXPECT_TRUE(all_close("max", m.to_vector<float>(), want, 0, 0));
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

TEST(OpsForward, SoftmaxAndLogSoftmaxMatchReference) {
  const Shape s = {3, 5, 7};
  Tensor x = random_tensor(s, 14, -5, 5);
  const std::vector<RefInput> xr = {{s, values_of(x)}};
  for (std::int64_t axis : {0, 1, 2, -1}) {
    const auto sm = op_reference::softmax(axis, false)(xr);
    const auto lsm = op_reference::softmax(axis, true)(xr);
    EXPECT_TRUE(all_close("softmax", softmax(x, axis).to_vector<float>(), sm, 1e-7, 1e-5));
    EXPECT_TRUE(all_close("log_softmax", log_softmax(x, axis).to_vector<float>(), lsm, 1e-5, 1e-5));
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
  for (double eps : {0.0, 0.1, 1.0}) {
    const double want = op_reference::cross_entropy(lab, eps)({{{n, c}, values_of(logits)}})[0];
    Tensor out = cross_entropy(logits, labels, eps);
    EXPECT_EQ(out.shape(), Shape{});
    EXPECT_NEAR(out.item(), want, 1e-5) << "smoothing " << eps;
  }
}

}  // namespace
}  // namespace shrink::testing
