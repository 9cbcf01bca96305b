// The autograd engine's own behaviour (accumulation, shared inputs, no_grad, detach, errors,
// deep graphs). Every op's gradient is checked from the op table (tests/op_table.h) in
// test_op_table.cpp.
#include <gtest/gtest.h>
#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "core/shrink.h"

namespace shrink {
namespace {

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

TEST(Autograd, DeepChainWithKeptInputsIsReleasedWithoutRecursion) {
  // Under a KeepGraphInputsGuard (the channel trace) every node also holds its input tensor,
  // whose grad_fn is the previous node: releasing must still be a loop.
  run_on_small_stack([] {
    constexpr int kDepth = 100000;
    KeepGraphInputsGuard keep;
    Tensor x = leaf({0.0, 1.0});
    Tensor y = x;
    for (int i = 0; i < kDepth; ++i) y = add_scalar(y, 1.0);
    ASSERT_EQ(y.grad_fn()->inputs.size(), 1u);
    EXPECT_EQ(y.grad_fn()->inputs[0].grad_fn(), y.grad_fn()->edges[0].node);  // the same node, kept
    y = Tensor();
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
