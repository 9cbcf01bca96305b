// The op table (tests/op_table.h) on the CPU: every row's float64 gradient against central
// differences ("OpTable/GradCheck.<row>"), and every row with a reference against its plain
// loops from kernels/reference/, in float64 and float32 ("OpTable/Forward.<row>"); pointwise
// rows also on a shape above the OpenMP grain. Plus checks of the table and of the checker.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "core/shrink.h"
#include "tests/gradcheck.h"
#include "tests/op_table.h"
#include "tests/test_helpers.h"

namespace shrink::testing {
namespace {

void check_gradient(const OpCase& c) {
  EXPECT_TRUE(gradcheck(c.name, c.fn, c.inputs, c.grad));
}

std::vector<RefInput> ref_inputs(const std::vector<Tensor>& inputs) {
  std::vector<RefInput> out;
  for (const Tensor& x : inputs) out.push_back({x.shape(), values_of(x)});
  return out;
}

// Runs the row in `dtype` and compares with the reference computed from the same (rounded)
// input values.
void check_forward_in(const OpCase& c, const std::vector<Tensor>& drawn, DType dtype, double tol) {
  std::vector<Tensor> inputs;
  for (const Tensor& x : drawn) inputs.push_back(x.to(dtype));
  const Tensor y = c.fn(inputs);
  EXPECT_EQ(y.dtype(), dtype) << c.name;
  EXPECT_TRUE(all_close(c.name + " forward " + dtype_name(dtype), values_of(y),
                        c.reference(ref_inputs(inputs)), tol, tol, y.shape()));
}

void check_forward(const OpCase& c) {
  const std::vector<Tensor> drawn = draw_inputs(c);
  check_forward_in(c, drawn, DType::Float64, c.tol64);
  check_forward_in(c, drawn, DType::Float32, c.tol32);
  if (c.any_shape) {  // 41 x 1001 > 32768 elements: the threaded kernel paths
    std::mt19937_64 rng(5);
    const Tensor big = make_input(InputSpec({41, 1001}, c.inputs[0].init), rng);
    check_forward_in(c, {big}, DType::Float32, c.tol32);
    check_forward_in(c, {big}, DType::Float64, c.tol64);
  }
}

const bool kGradCheck = register_op_tests("OpTable/GradCheck", check_gradient, __FILE__, __LINE__,
                                          [](const OpCase& c) { return c.gradcheck; });
const bool kForward = register_op_tests("OpTable/Forward", check_forward, __FILE__, __LINE__,
                                        [](const OpCase& c) { return bool(c.reference); });

TEST(OpTableRows, NamesAreUniqueAsTestNames) {
  std::set<std::string> names;
  for (const auto& c : op_cases()) EXPECT_TRUE(names.insert(test_name(c.name)).second) << c.name;
}

// 111 rows when the table was made (109 from test_autograd.cpp, 2 from
// test_sparse_linear.cpp); rows may be added, none lost.
TEST(OpTableRows, NoRowLost) {
  const auto n = std::count_if(op_cases().begin(), op_cases().end(),
                               [](const OpCase& c) { return c.gradcheck; });
  EXPECT_GE(n, 111);
}

// Every pointwise kernel but Sign (abs's derivative, no op of its own) has a row, so the
// kernel tests that iterate the table's `unary` rows reach it.
TEST(OpTableRows, EveryUnaryKernelHasARow) {
  using kernels::UnaryOp;
  std::set<UnaryOp> covered;
  for (const auto& c : op_cases())
    if (c.unary) covered.insert(c.unary->op);
  for (int op = 0; op <= static_cast<int>(UnaryOp::Square); ++op) {
    if (static_cast<UnaryOp>(op) == UnaryOp::Sign) continue;
    EXPECT_TRUE(covered.count(static_cast<UnaryOp>(op))) << "UnaryOp " << op << " has no row";
  }
}

// The checker itself must catch a wrong backward rule.
TEST(GradCheckSelfTest, DetectsAWrongGradient) {
  auto wrong_square = [](const std::vector<Tensor>& x) {
    Tensor y = mul(x[0].detach(), x[0].detach());  // value x^2 ...
    Tensor out = y.detach();
    record(out, "wrong_square", {x[0]}, [](const Tensor& g) {  // ... gradient g, not 2xg
      return std::vector<Tensor>{g};
    });
    return out;
  };
  const auto result = gradcheck("wrong_square", wrong_square, {InputSpec({3, 2})});
  EXPECT_FALSE(result);
  EXPECT_NE(std::string(result.message()).find("wrong_square"), std::string::npos);
}

// And the forward check must catch a wrong value, naming the worst element.
TEST(GradCheckSelfTest, AllCloseNamesTheWorstElement) {
  const auto result = all_close("op", std::vector<double>{1, 2, 3.5}, {1, 2, 3}, 1e-6, 1e-6, {3});
  EXPECT_FALSE(result);
  EXPECT_NE(std::string(result.message()).find("element 2 [2]"), std::string::npos)
      << result.message();
}

}  // namespace
}  // namespace shrink::testing
