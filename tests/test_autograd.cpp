// Autograd: one table of differentiable ops, each checked against central finite
// differences in float64 (tests/gradcheck.h), plus the engine's own behaviour
// (accumulation, shared inputs, no_grad, detach, errors, deep graphs).
#include <gtest/gtest.h>
#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "core/shrink.h"
#include "tests/gradcheck.h"

namespace shrink {
namespace {

using testing::gradcheck;
using testing::Init;
using testing::InputSpec;
using testing::TensorFn;
using V = const std::vector<Tensor>&;

struct OpCase {
  std::string name;
  std::vector<InputSpec> inputs;
  TensorFn fn;
};
// GoogleTest prints a parameter with this instead of its raw bytes.
void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

Tensor int64s(const std::vector<std::int64_t>& v) {
  return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())});
}

void add_binary_cases(std::vector<OpCase>& t) {
  struct Pattern {
    const char* name;
    Shape a, b;
  };
  const std::vector<Pattern> patterns = {
      {"same", {3, 5}, {3, 5}},          {"row", {3, 5}, {5}},
      {"column", {3, 5}, {3, 1}},        {"scalar_shaped", {3, 5}, {}},
      {"scalar_shaped_left", {}, {2, 3}}, {"leading_dim", {2, 3, 5}, {3, 5}},
      {"leading_dim_left", {3, 5}, {2, 3, 5}}, {"both_broadcast", {3, 1, 5}, {1, 4, 1}},
      {"middle", {2, 3, 4}, {2, 1, 4}},  {"ones_vs_full", {1, 1}, {3, 4}},
  };
  struct BinaryOpEntry {
    const char* name;
    Tensor (*fn)(const Tensor&, const Tensor&);
  };
  const BinaryOpEntry ops[] = {{"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}};
  for (const auto& op : ops)
    for (const auto& p : patterns) {
      const Init b_init = std::string(op.name) == "div" ? Init::Positive : Init::Normal;
      auto fn = op.fn;
      t.push_back({std::string(op.name) + "_" + p.name, {{p.a}, {p.b, b_init}},
                   [fn](V x) { return fn(x[0], x[1]); }});
    }
}

std::vector<OpCase> op_table() {
  std::vector<OpCase> t;
  add_binary_cases(t);
  const Shape s = {3, 5};
  // ---- scalar forms and pointwise ----
  t.push_back({"neg", {{s}}, [](V x) { return neg(x[0]); }});
  t.push_back({"add_scalar", {{s}}, [](V x) { return add_scalar(x[0], 0.7); }});
  t.push_back({"mul_scalar", {{s}}, [](V x) { return mul_scalar(x[0], -1.3); }});
  t.push_back({"operators", {{s}, {s, Init::Positive}},
               [](V x) { return (2.0 * x[0] - 1.5) / 3.0 + x[0] * x[1] - x[0] / x[1] + (-x[1]); }});
  t.push_back({"exp", {{s}}, [](V x) { return exp(x[0]); }});
  t.push_back({"log", {{s, Init::Positive}}, [](V x) { return log(x[0]); }});
  t.push_back({"sqrt", {{s, Init::Positive}}, [](V x) { return sqrt(x[0]); }});
  t.push_back({"pow_2.5", {{s, Init::Positive}}, [](V x) { return pow(x[0], 2.5); }});
  t.push_back({"pow_-1.5", {{s, Init::Positive}}, [](V x) { return pow(x[0], -1.5); }});
  t.push_back({"pow_3_negative_base", {{s}}, [](V x) { return pow(x[0], 3.0); }});
  t.push_back({"abs", {{s, Init::AwayFromZero}}, [](V x) { return abs(x[0]); }});
  t.push_back({"square", {{s}}, [](V x) { return square(x[0]); }});
  t.push_back({"relu", {{s, Init::AwayFromZero}}, [](V x) { return relu(x[0]); }});
  t.push_back({"relu6", {{{4, 5}, Init::Relu6Range}}, [](V x) { return relu6(x[0]); }});
  t.push_back({"gelu", {{s}}, [](V x) { return gelu(x[0]); }});
  t.push_back({"tanh", {{s}}, [](V x) { return tanh(x[0]); }});
  t.push_back({"sigmoid", {{s}}, [](V x) { return sigmoid(x[0]); }});
  // ---- matrix products ----
  t.push_back({"matmul_2d", {{{3, 4}}, {{4, 5}}}, [](V x) { return matmul(x[0], x[1]); }});
  t.push_back({"matmul_bmk_kn", {{{2, 3, 4}}, {{4, 5}}}, [](V x) { return matmul(x[0], x[1]); }});
  t.push_back({"matmul_bmk_bkn", {{{2, 3, 4}}, {{2, 4, 5}}}, [](V x) { return matmul(x[0], x[1]); }});
  t.push_back({"matmul_mk_bkn", {{{3, 4}}, {{2, 4, 5}}}, [](V x) { return matmul(x[0], x[1]); }});
  t.push_back({"matmul_4d", {{{2, 2, 3, 4}}, {{2, 2, 4, 3}}}, [](V x) { return matmul(x[0], x[1]); }});
  t.push_back({"matmul_4d_by_2d", {{{2, 2, 3, 4}}, {{4, 3}}}, [](V x) { return matmul(x[0], x[1]); }});
  t.push_back({"linear_bias", {{{3, 4}}, {{5, 4}}, {{5}}},
               [](V x) { return linear(x[0], x[1], x[2]); }});
  t.push_back({"linear_no_bias", {{{3, 4}}, {{5, 4}}},
               [](V x) { return linear(x[0], x[1], Tensor()); }});
  t.push_back({"linear_3d_input", {{{2, 3, 4}}, {{5, 4}}, {{5}}},
               [](V x) { return linear(x[0], x[1], x[2]); }});
  // ---- reductions ----
  const Shape r = {3, 4, 5};
  t.push_back({"sum_all", {{r}}, [](V x) { return sum(x[0]); }});
  t.push_back({"sum_axis1", {{r}}, [](V x) { return sum(x[0], {1}); }});
  t.push_back({"sum_axes_0_2", {{r}}, [](V x) { return sum(x[0], {0, 2}); }});
  t.push_back({"sum_axes_neg_keepdim", {{r}}, [](V x) { return sum(x[0], {-1, 0}, true); }});
  t.push_back({"sum_keepdim", {{r}}, [](V x) { return sum(x[0], {1}, true); }});
  t.push_back({"sum_scalar_shaped", {{{}}}, [](V x) { return sum(x[0]); }});
  t.push_back({"sum_to", {{{2, 3, 4}}}, [](V x) { return sum_to(x[0], {3, 1}); }});
  t.push_back({"mean_all", {{r}}, [](V x) { return mean(x[0]); }});
  t.push_back({"mean_axis", {{r}}, [](V x) { return mean(x[0], {2}); }});
  t.push_back({"mean_axes_keepdim", {{r}}, [](V x) { return mean(x[0], {0, 1}, true); }});
  t.push_back({"max_axis0", {{r, Init::Distinct}}, [](V x) { return max(x[0], 0); }});
  t.push_back({"max_axis1_keepdim", {{r, Init::Distinct}}, [](V x) { return max(x[0], 1, true); }});
  t.push_back({"max_last", {{r, Init::Distinct}}, [](V x) { return max(x[0], -1); }});
  // ---- softmax family and losses ----
  for (std::int64_t axis : {-1, 0, 1}) {
    t.push_back({"softmax_axis" + std::to_string(axis), {{r}},
                 [axis](V x) { return softmax(x[0], axis); }});
    t.push_back({"log_softmax_axis" + std::to_string(axis), {{r}},
                 [axis](V x) { return log_softmax(x[0], axis); }});
  }
  t.push_back({"cross_entropy", {{{4, 5}}},
               [](V x) { return cross_entropy(x[0], int64s({0, 4, 2, 4})); }});
  t.push_back({"cross_entropy_smoothing", {{{4, 5}}},
               [](V x) { return cross_entropy(x[0], int64s({1, 3, 0, 1}), 0.1); }});
  t.push_back({"cross_entropy_full_smoothing", {{{3, 7}}},
               [](V x) { return cross_entropy(x[0], int64s({6, 0, 2}), 1.0); }});
  // ---- dropout: a fixed generator gives the same mask every call ----
  t.push_back({"dropout", {{{4, 7}}}, [](V x) {
                 Generator gen(7);
                 return dropout(x[0], 0.3, true, gen);
               }});
  t.push_back({"dropout_eval", {{{4, 7}}}, [](V x) {
                 Generator gen(7);
                 return dropout(x[0], 0.3, false, gen);
               }});
  // ---- layout ----
  t.push_back({"reshape", {{{3, 4}}}, [](V x) { return reshape(x[0], {2, 6}); }});
  t.push_back({"reshape_infer", {{{3, 4}}}, [](V x) { return reshape(x[0], {-1, 2, 3}); }});
  t.push_back({"flatten", {{{2, 3, 4}}}, [](V x) { return flatten(x[0]); }});
  t.push_back({"flatten_0", {{{2, 3, 4}}}, [](V x) { return flatten(x[0], 0); }});
  t.push_back({"expand", {{{3, 1}}}, [](V x) { return expand(x[0], {2, 3, 4}); }});
  t.push_back({"expand_vector", {{{4}}}, [](V x) { return expand(x[0], {3, 4}); }});
  t.push_back({"expand_scalar_shaped", {{{}}}, [](V x) { return expand(x[0], {2, 3}); }});
  t.push_back({"transpose", {{{2, 3, 4}}}, [](V x) { return transpose(x[0], 0, 2); }});
  t.push_back({"transpose_neg", {{{3, 4}}}, [](V x) { return transpose(x[0], -1, -2); }});
  t.push_back({"permute", {{{2, 3, 4}}}, [](V x) { return permute(x[0], {2, 0, 1}); }});
  t.push_back({"concat_axis1", {{{2, 1, 3}}, {{2, 4, 3}}, {{2, 2, 3}}},
               [](V x) { return concat({x[0], x[1], x[2]}, 1); }});
  t.push_back({"concat_axis0", {{{1, 4}}, {{3, 4}}}, [](V x) { return concat({x[0], x[1]}, 0); }});
  t.push_back({"concat_same_input_twice", {{{2, 3}}}, [](V x) { return concat({x[0], x[0]}, -1); }});
  t.push_back({"slice_step", {{{3, 8}}}, [](V x) { return slice(x[0], 1, 1, 7, 2); }});
  t.push_back({"slice_negative_start", {{{5, 3}}}, [](V x) { return slice(x[0], 0, -3, 100); }});
  t.push_back({"index_select_repeated", {{{3, 4}}},
               [](V x) { return index_select(x[0], 0, int64s({2, 0, 2, 1, 2})); }});
  t.push_back({"index_select_middle", {{{2, 5, 3}}},
               [](V x) { return index_select(x[0], 1, int64s({4, 4, 0, 3})); }});
  t.push_back({"to_cpu", {{s}}, [](V x) { return x[0].to(Device::cpu()); }});
  // ---- a small network: every op's backward composed ----
  t.push_back({"mlp", {{{4, 3}}, {{5, 3}}, {{5}}, {{3, 5}}}, [](V x) {
                 Tensor h = gelu(linear(x[0], x[1], x[2]));
                 return cross_entropy(linear(h, x[3], Tensor()), int64s({0, 2, 1, 2}), 0.05);
               }});
  return t;
}

class GradCheck : public ::testing::TestWithParam<OpCase> {};

TEST_P(GradCheck, MatchesFiniteDifferences) {
  const OpCase& c = GetParam();
  EXPECT_TRUE(gradcheck(c.name, c.fn, c.inputs));
}

std::string case_name(const ::testing::TestParamInfo<OpCase>& info) {
  std::string s = info.param.name;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Ops, GradCheck, ::testing::ValuesIn(op_table()), case_name);

TEST(GradCheckTable, NamesAreUnique) {
  std::vector<std::string> names;
  for (const auto& c : op_table()) names.push_back(c.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
}

// The checker itself must catch a wrong backward rule.
TEST(GradCheckTable, DetectsAWrongGradient) {
  auto wrong_square = [](V x) {
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

// ---- dropout: the gradient is exactly the mask (0 or 1/(1-p)) ----
TEST(Autograd, DropoutGradientIsTheMask) {
  const double p = 0.4;
  Tensor x = Tensor::full({1000}, 2.0, DType::Float64).requires_grad_();
  Generator gen(11);
  Tensor y = dropout(x, p, true, gen);
  y.backward(Tensor::ones({1000}, DType::Float64));
  const auto yv = y.to_vector<double>(), gv = x.grad().to_vector<double>();
  int kept = 0;
  for (size_t i = 0; i < gv.size(); ++i) {
    ASSERT_DOUBLE_EQ(gv[i], yv[i] / 2.0) << i;
    ASSERT_TRUE(gv[i] == 0.0 || std::abs(gv[i] - 1.0 / (1.0 - p)) < 1e-12) << gv[i];
    kept += gv[i] != 0.0;
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, 1000);
}

// ---- engine ----
Tensor leaf(const std::vector<double>& v) {
  return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())}).requires_grad_();
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({1.0, -2.0, 3.0});
  sum(mul(x, x)).backward();  // 2x
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.0, -4.0, 6.0}));
  sum(mul_scalar(x, 3.0)).backward();  // + 3
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5.0, -1.0, 9.0}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, DiamondGraphSumsBothPaths) {
  Tensor x = leaf({0.5, -1.0});
  Tensor a = tanh(x), b = exp(x);  // x feeds two branches that meet again
  sum(mul(a, b) + x).backward();
  const auto g = x.grad().to_vector<double>();
  for (int i = 0; i < 2; ++i) {
    const double v = i == 0 ? 0.5 : -1.0, t = std::tanh(v), e = std::exp(v);
    EXPECT_NEAR(g[i], (1 - t * t) * e + t * e + 1.0, 1e-12);
  }
}

TEST(Autograd, SameTensorTwiceInOneOp) {
  Tensor x = leaf({3.0, -1.0});
  sum(add(x, x)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.0, 2.0}));
  x.zero_grad();
  sum(mul(x, x)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{6.0, -2.0}));
}

TEST(Autograd, OnlyInputsThatRequireGradGetOne) {
  Tensor a = leaf({1.0, 2.0});
  Tensor b = Tensor::from_vector(std::vector<double>{3.0, 4.0}, {2});
  sum(mul(a, b)).backward();
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{3.0, 4.0}));
  EXPECT_FALSE(b.grad().defined());
  EXPECT_FALSE(b.requires_grad());
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = leaf({1.0, 2.0});
  EXPECT_TRUE(grad_enabled());
  Tensor y;
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    {
      NoGradGuard nested;
      EXPECT_FALSE(grad_enabled());
    }
    EXPECT_FALSE(grad_enabled());  // the inner guard restores the outer state
    y = sum(mul(exp(x), x));
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_THROW(y.backward(), Error);
  Tensor z = mul(x, x);  // recording is back on
  EXPECT_TRUE(z.requires_grad());
  EXPECT_NE(z.grad_fn(), nullptr);
}

TEST(Autograd, DetachStopsGradients) {
  Tensor x = leaf({2.0, -3.0});
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.raw_data(), x.raw_data());  // shares data
  sum(mul(d, x)).backward();                // d/dx (c * x) = c, not 2x
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.0, -3.0}));
  EXPECT_FALSE(d.grad().defined());
}

TEST(Autograd, BackwardErrors) {
  Tensor x = leaf({1.0, 2.0, 3.0});
  Tensor y = mul_scalar(x, 2.0);
  EXPECT_THROW(y.backward(), Error);  // non-scalar without a seed
  try {
    y.backward();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("(3,)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(y.backward(Tensor::ones({2}, DType::Float64)), Error);  // seed shape
  Tensor c = Tensor::ones({1}, DType::Float64);
  EXPECT_THROW(c.backward(), Error);  // nothing requires grad
  EXPECT_THROW(Tensor::arange(3).requires_grad_(), Error);
  y.backward(Tensor::ones({3}, DType::Float64));  // with a seed it works
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2.0, 2.0, 2.0}));
}

// Runs `body` on a thread with a small (1 MiB) stack, so recursion proportional to graph
// depth fails here instead of passing on a roomy main-thread stack.
void run_on_small_stack(void (*body)()) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 20);
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, &attr, [](void* f) -> void* {
              reinterpret_cast<void (*)()>(f)();
              return nullptr;
            }, reinterpret_cast<void*>(body)), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

TEST(Autograd, DeepChainDoesNotOverflowTheStack) {
  run_on_small_stack([] {
    constexpr int kDepth = 100000;
    Tensor x = leaf({0.0, 1.0});
    Tensor y = x;
    for (int i = 0; i < kDepth; ++i) y = add_scalar(y, 1.0);
    EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{kDepth, kDepth + 1.0}));
    sum(y).backward();  // the engine is iterative
    EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1.0, 1.0}));
    y = Tensor();  // releasing the 100000-node graph must not recurse either
  });
}

TEST(Autograd, LeafGradientsDoNotAliasEachOtherOrTheSeed) {
  Tensor a = leaf({1.0, 2.0}), b = leaf({3.0, 4.0});
  Tensor seed = Tensor::from_vector(std::vector<double>{1.0, 1.0}, {2});
  add(a, b).backward(seed);
  EXPECT_NE(a.grad().raw_data(), b.grad().raw_data());
  EXPECT_NE(a.grad().raw_data(), seed.raw_data());
  a.grad().fill_(0.0);  // an in-place update of one gradient (an optimizer, clipping)
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{1.0, 1.0}));
  EXPECT_EQ(seed.to_vector<double>(), (std::vector<double>{1.0, 1.0}));
  // A leaf used as the root: its gradient is not the caller's seed tensor.
  Tensor c = leaf({5.0});
  Tensor one = Tensor::ones({1}, DType::Float64);
  c.backward(one);
  EXPECT_NE(c.grad().raw_data(), one.raw_data());
}

TEST(Autograd, Float32GradientsFlowToo) {
  Tensor x = Tensor::from_vector(std::vector<float>{1.f, -2.f}, {2}).requires_grad_();
  sum(square(x)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::Float32);
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2.f, -4.f}));
}

TEST(Autograd, UnusedBranchGetsNoGradient) {
  Tensor x = leaf({1.0}), unused = leaf({2.0});
  Tensor branch = mul(unused, unused);  // recorded but not part of the loss
  sum(mul_scalar(x, 4.0)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), std::vector<double>{4.0});
  EXPECT_FALSE(unused.grad().defined());
}

}  // namespace
}  // namespace shrink
