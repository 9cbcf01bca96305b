// What a recorded op keeps alive until backward. An op keeps only the tensors its requested
// gradients read: with frozen parameters (a score pass of a pruning criterion: eval mode, only
// input gradients) a conv keeps its weight but not its input, an eval BatchNorm keeps neither
// input nor output, a ReLU its output alone. Each case checks both sides — the tensor is
// freed when its gradient is not requested and kept when it is (so the check can fail) — and
// that the input gradient is bit for bit the one computed with everything kept.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/shrink.h"

namespace shrink {
namespace {

struct Probe {
  bool freed = false;      // the intermediate's storage was released right after the forward
  std::vector<double> dx;  // d sum(f(h) * r) / d leaf
};

// h = 2 leaf is an intermediate that nothing but op(h) refers to once the forward returns;
// whether its storage survives says whether op's backward kept it.
Probe probe(const Shape& shape, const std::function<Tensor(const Tensor&)>& op, std::uint64_t seed) {
  Generator gen(seed);
  Tensor leaf = Tensor::randn(shape, gen, DType::Float64).requires_grad_();
  std::weak_ptr<Storage> watch;
  Tensor y;
  {
    Tensor h = mul_scalar(leaf, 2.0);
    watch = h.impl()->storage;
    y = op(h);
  }
  Probe p;
  p.freed = watch.expired();
  Generator rgen(seed + 1);
  const Tensor r = Tensor::randn(y.shape(), rgen, DType::Float64);
  sum(mul(y, r)).backward();
  p.dx = leaf.grad().to_vector<double>();
  return p;
}

Tensor param(const Shape& shape, std::uint64_t seed, bool trainable) {
  Generator gen(seed);
  Tensor t = Tensor::randn(shape, gen, DType::Float64);
  if (trainable) t.requires_grad_();
  return t;
}

// `op(h, trainable)`: the op with its parameters frozen (false) or trainable (true).
void expect_freed_only_when_frozen(const std::string& what, const Shape& shape,
                                   const std::function<Tensor(const Tensor&, bool)>& op) {
  const Probe frozen = probe(shape, [&](const Tensor& h) { return op(h, false); }, 5);
  const Probe trainable = probe(shape, [&](const Tensor& h) { return op(h, true); }, 5);
  EXPECT_TRUE(frozen.freed) << what << ": the input was kept although no parameter gradient reads it";
  EXPECT_FALSE(trainable.freed) << what << ": the input was freed although a parameter gradient reads it";
  ASSERT_EQ(frozen.dx.size(), trainable.dx.size());
  for (std::size_t i = 0; i < frozen.dx.size(); ++i)
    ASSERT_EQ(frozen.dx[i], trainable.dx[i]) << what << ": input gradient differs at " << i;
}

TEST(AutogradSaved, ConvKeepsItsInputOnlyForTheWeightGradient) {
  const Tensor w0 = param({5, 3, 3, 3}, 11, false), b0 = param({5}, 12, false);
  expect_freed_only_when_frozen("conv2d", {2, 3, 7, 6}, [&](const Tensor& h, bool trainable) {
    Tensor w = w0.detach(), b = b0.detach();
    if (trainable) w.requires_grad_();
    Conv2dOptions o;
    o.pad_h = o.pad_w = 1;
    return conv2d(h, w, b, o);
  });
}

TEST(AutogradSaved, EvalBatchNormKeepsItsInputOnlyForGammaOrBeta) {
  const Tensor g0 = param({3}, 21, false), b0 = param({3}, 22, false);
  const Tensor mean = param({3}, 23, false), var = add_scalar(abs(param({3}, 24, false)), 0.5);
  for (const bool beta_trains : {false, true})
    expect_freed_only_when_frozen(beta_trains ? "batch_norm (beta trains)" : "batch_norm (gamma trains)",
                                  {2, 3, 4, 5}, [&](const Tensor& h, bool trainable) {
      Tensor g = g0.detach(), b = b0.detach();
      if (trainable) (beta_trains ? b : g).requires_grad_();
      return batch_norm(h, g, b, mean.clone(), var.clone(), /*training=*/false);
    });
}

TEST(AutogradSaved, TrainingBatchNormAlwaysKeepsItsInput) {
  // The batch statistics depend on x: dx reads it even with gamma and beta frozen.
  const Probe p = probe({4, 3, 2, 2}, [](const Tensor& h) {
    return batch_norm(h, Tensor(), Tensor(), Tensor::zeros({3}, DType::Float64),
                      Tensor::ones({3}, DType::Float64), /*training=*/true);
  }, 31);
  EXPECT_FALSE(p.freed);
}

TEST(AutogradSaved, LinearAndMatmulKeepTheInputOnlyForTheWeightGradient) {
  const Tensor w0 = param({4, 6}, 41, false), b0 = param({4}, 42, false);
  expect_freed_only_when_frozen("linear", {3, 5, 6}, [&](const Tensor& h, bool trainable) {
    Tensor w = w0.detach();
    if (trainable) w.requires_grad_();
    return linear(h, w, b0);
  });
  const Tensor m0 = param({6, 4}, 43, false);
  expect_freed_only_when_frozen("matmul (.., k) @ (k, n)", {3, 5, 6}, [&](const Tensor& h, bool trainable) {
    Tensor m = m0.detach();
    if (trainable) m.requires_grad_();
    return matmul(h, m);
  });
  const Tensor bm0 = param({3, 6, 4}, 44, false);
  expect_freed_only_when_frozen("batched matmul", {3, 5, 6}, [&](const Tensor& h, bool trainable) {
    Tensor m = bm0.detach();
    if (trainable) m.requires_grad_();
    return matmul(h, m);
  });
  expect_freed_only_when_frozen("mul", {3, 5}, [&](const Tensor& h, bool trainable) {
    Tensor m = param({3, 5}, 45, false);
    if (trainable) m.requires_grad_();
    return mul(h, m);
  });
}

TEST(AutogradSaved, ActivationsKeepOnlyWhatTheirDerivativeReads) {
  // ReLU, ReLU6, sigmoid, tanh, exp, sqrt differentiate from their output: the input goes.
  const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> from_output = {
      {"relu", [](const Tensor& h) { return relu(h); }},
      {"relu6", [](const Tensor& h) { return relu6(mul_scalar(h, 4.0)); }},
      {"sigmoid", [](const Tensor& h) { return sigmoid(h); }},
      {"tanh", [](const Tensor& h) { return tanh(h); }},
      {"exp", [](const Tensor& h) { return exp(h); }}};
  for (const auto& [name, f] : from_output) EXPECT_TRUE(probe({4, 9}, f, 51).freed) << name;
  // GELU and square differentiate from their input: it stays.
  EXPECT_FALSE(probe({4, 9}, [](const Tensor& h) { return gelu(h); }, 52).freed) << "gelu";
  EXPECT_FALSE(probe({4, 9}, [](const Tensor& h) { return square(h); }, 53).freed) << "square";
}

TEST(AutogradSaved, ReluGradientFromItsOutputMatchesTheMaskOfItsInput) {
  // y > 0 exactly where x > 0 (and 0 < relu6(x) < 6 exactly where 0 < x < 6), zeros included.
  const Tensor x =
      Tensor::from_vector(std::vector<double>{-2.0, -0.0, 0.0, 1e-300, 3.0, 5.999, 6.0, 7.5}, {8}).requires_grad_();
  sum(relu(x)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0, 0, 1, 1, 1, 1, 1}));
  const Tensor z = x.detach().requires_grad_();
  sum(relu6(z)).backward();
  EXPECT_EQ(z.grad().to_vector<double>(), (std::vector<double>{0, 0, 0, 1, 1, 1, 0, 0}));
}

}  // namespace
}  // namespace shrink
