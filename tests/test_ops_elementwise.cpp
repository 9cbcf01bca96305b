// Elementwise ops' forward values on odd and large shapes (float32) against
// kernels/reference/, beyond the op table's small shapes: broadcasting up to 10-D and on the
// threaded paths, the scalar forms and operators, dropout, and float64 against float32.
// (Each pointwise op's forward runs from its op-table row: test_op_table.cpp.)
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
    kernels::BinaryOp kernel;
  };
  const Op ops[] = {{"add", add, kernels::BinaryOp::Add}, {"sub", sub, kernels::BinaryOp::Sub},
                    {"mul", mul, kernels::BinaryOp::Mul}, {"div", div, kernels::BinaryOp::Div}};
  std::uint64_t seed = 1;
  for (const auto& [sa, sb] : cases)
    for (const Op& op : ops) {
      const std::string what = std::string(op.name) + " " + shape_str(sa) + " " + shape_str(sb);
      Tensor a = random_tensor(sa, seed++);
      Tensor b = random_tensor(sb, seed++, 0.5, 2);
      Tensor out;
      ASSERT_NO_THROW(out = op.fn(a, b)) << what;
      const Shape so = broadcast_shapes("test", sa, sb);
      ASSERT_EQ(out.shape(), so) << what;
      const auto av = values_of(a), bv = values_of(b);
      std::vector<double> want(static_cast<size_t>(numel(so)));
      kernels::reference::binary_broadcast(op.kernel, static_cast<int>(so.size()), so.data(),
                                           static_cast<int>(sa.size()), sa.data(), av.data(),
                                           static_cast<int>(sb.size()), sb.data(), bv.data(),
                                           want.data());
      EXPECT_TRUE(all_close(what, out.to_vector<float>(), want, 1e-6, 1e-6));
    }
}

TEST(OpsForward, ScalarFormsAndOperators) {
  Tensor x = random_tensor({3, 5, 7}, 3);
  const auto xv = x.to_vector<float>();
  std::vector<double> want(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) want[i] = (2.0 * xv[i] - 1.5) / 4.0;
  EXPECT_TRUE(all_close("operators", ((2.0 * x - 1.5) / 4.0).to_vector<float>(), want, 1e-6, 1e-6));
  for (size_t i = 0; i < xv.size(); ++i) want[i] = -xv[i];
  EXPECT_TRUE(all_close("neg", neg(x).to_vector<float>(), want, 0, 0));
  for (size_t i = 0; i < xv.size(); ++i) want[i] = xv[i] + 0.25;
  EXPECT_TRUE(all_close("add_scalar", add_scalar(x, 0.25).to_vector<float>(), want, 1e-7, 1e-7));
  for (size_t i = 0; i < xv.size(); ++i) want[i] = xv[i] * -3.0;
  EXPECT_TRUE(all_close("mul_scalar", mul_scalar(x, -3.0).to_vector<float>(), want, 1e-7, 1e-7));
}

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

TEST(OpsForward, Float64MatchesFloat32) {
  Tensor x = random_tensor({3, 5, 7}, 24), w = random_tensor({4, 7}, 25);
  auto net = [](const Tensor& a, const Tensor& b) {
    return softmax(gelu(linear(a, b, Tensor())), 1);
  };
  const auto f32 = net(x, w).to_vector<float>();
  const auto f64 = net(x.to(DType::Float64), w.to(DType::Float64)).to_vector<double>();
  EXPECT_TRUE(all_close("float32 vs float64", f32, f64, 1e-6, 1e-5));
}

}  // namespace
}  // namespace shrink::testing
