// nn/optim and nn/schedule: every optimizer update against PyTorch's algorithm written
// out in double (kernels/reference/optim.h), and every schedule at known epochs.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>

#include "core/shrink.h"
#include "kernels/reference/optim.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::nn;

namespace {

constexpr int kSteps = 5;
const std::vector<double> kInit{0.5, -1.25, 2.0, 0.0, -0.3};

// A different, known gradient at every step (it does not depend on w, so the reference
// can be computed independently of the optimizer).
std::vector<double> grad_at(int step) {
  std::vector<double> g;
  for (std::size_t i = 0; i < kInit.size(); ++i)
    g.push_back(std::sin(1.0 + step * 0.7 + static_cast<double>(i)) * (i % 2 ? 2.0 : 0.5));
  return g;
}

// Runs `opt` for kSteps on a double parameter initialised to kInit with grad_at(step).
template <class MakeOpt>
std::vector<double> run(MakeOpt make_opt, DType dtype = DType::Float64) {
  Tensor w = Tensor::from_vector(kInit, {5}).to(dtype).requires_grad_(true);
  auto opt = make_opt(NamedTensors{{"w", w}});
  for (int s = 0; s < kSteps; ++s) {
    w.set_grad(Tensor::from_vector(grad_at(s), {5}).to(dtype));
    opt->step();
  }
  return w.to(DType::Float64).template to_vector<double>();
}

// torch.optim.SGD, step by step (kernels/reference/optim.h).
std::vector<double> sgd_reference(double lr, double momentum, double dampening, double wd,
                                  bool nesterov) {
  std::vector<double> w = kInit, buf(w.size());
  kernels::SgdParams p;
  p.lr = lr, p.momentum = momentum, p.dampening = dampening, p.weight_decay = wd;
  p.nesterov = nesterov;
  for (int s = 0; s < kSteps; ++s) {
    p.first_step = s == 0;  // the buffer starts as the first gradient
    const auto g = grad_at(s);
    kernels::reference::sgd_step(static_cast<std::int64_t>(w.size()), p, w.data(), g.data(),
                                 buf.data());
  }
  return w;
}

// torch.optim.AdamW, step by step (kernels/reference/optim.h).
std::vector<double> adamw_reference(double lr, double b1, double b2, double eps, double wd) {
  std::vector<double> w = kInit, m(w.size()), v(w.size());
  kernels::AdamWParams p;
  p.lr = lr, p.beta1 = b1, p.beta2 = b2, p.eps = eps, p.weight_decay = wd;
  for (int s = 0; s < kSteps; ++s) {
    p.step = s + 1;
    const auto g = grad_at(s);
    kernels::reference::adamw_step(static_cast<std::int64_t>(w.size()), p, w.data(), g.data(),
                                   m.data(), v.data());
  }
  return w;
}

void expect_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

}  // namespace

// ---- SGD ----

struct SgdCase {
  const char* name;
  double lr, momentum, dampening, wd;
  bool nesterov;
};

TEST(SGD, MatchesPyTorchAlgorithm) {
  for (const SgdCase c : {SgdCase{"plain", 0.1, 0, 0, 0, false},
                          SgdCase{"momentum", 0.05, 0.9, 0, 0, false},
                          SgdCase{"dampening", 0.05, 0.9, 0.3, 0, false},
                          SgdCase{"nesterov", 0.05, 0.9, 0, 0, true},
                          SgdCase{"weight_decay", 0.1, 0, 0, 0.01, false},
                          SgdCase{"all", 0.02, 0.8, 0, 5e-4, true}}) {
    SCOPED_TRACE(c.name);
    auto make = [&](NamedTensors p) {
      return std::make_unique<SGD>(p, c.lr, c.momentum, c.dampening, c.wd, c.nesterov);
    };
    const auto want = sgd_reference(c.lr, c.momentum, c.dampening, c.wd, c.nesterov);
    expect_near(run(make), want, 1e-12);
    expect_near(run(make, DType::Float32), want, 1e-5);
    // The update must actually move the weights (a no-op optimizer would fail above too).
    EXPECT_GT(std::abs(want[0] - kInit[0]), 1e-3);
  }
}

TEST(SGD, MomentumBufferStartsAtFirstGradient) {
  Tensor w = Tensor::from_vector<double>({1.0, 2.0}, {2}).requires_grad_(true);
  SGD opt({{"w", w}}, 0.1, 0.9, 0.5);
  w.set_grad(Tensor::from_vector<double>({3.0, -1.0}, {2}));
  opt.step();
  // buf = g exactly on the first step, not (1 - dampening) * g.
  EXPECT_EQ(opt.state().at("w").at("momentum_buffer").to_vector<double>(),
            (std::vector<double>{3.0, -1.0}));
  EXPECT_EQ(w.to_vector<double>(), (std::vector<double>{1.0 - 0.3, 2.0 + 0.1}));
}

TEST(SGD, ParametersWithoutGradAreSkipped) {
  Tensor a = Tensor::from_vector<double>({1.0}, {1}).requires_grad_(true);
  Tensor b = Tensor::from_vector<double>({1.0}, {1}).requires_grad_(true);
  SGD opt({{"a", a}, {"b", b}}, 0.5, 0.9);
  a.set_grad(Tensor::from_vector<double>({1.0}, {1}));
  opt.step();
  EXPECT_EQ(a.item(), 0.5);
  EXPECT_EQ(b.item(), 1.0);
  EXPECT_FALSE(opt.state().count("b"));
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

TEST(SGD, RejectsBadHyperparameters) {
  Tensor w = Tensor::zeros({1}).requires_grad_(true);
  EXPECT_THROW(SGD({{"w", w}}, -1.0), Error);
  EXPECT_THROW(SGD({{"w", w}}, 0.1, 0.0, 0.0, 0.0, /*nesterov=*/true), Error);
  EXPECT_THROW(SGD({{"w", w}, {"w", w}}, 0.1), Error);
}

// ---- AdamW ----

TEST(AdamW, MatchesPyTorchAlgorithm) {
  for (double wd : {0.0, 0.01, 0.1}) {
    SCOPED_TRACE(wd);
    auto make = [&](NamedTensors p) { return std::make_unique<AdamW>(p, 0.01, 0.9, 0.999, 1e-8, wd); };
    const auto want = adamw_reference(0.01, 0.9, 0.999, 1e-8, wd);
    expect_near(run(make), want, 1e-12);
    expect_near(run(make, DType::Float32), want, 1e-5);
  }
  // Other betas: the bias corrections matter more.
  auto make = [](NamedTensors p) { return std::make_unique<AdamW>(p, 0.1, 0.5, 0.7, 1e-3, 0.05); };
  expect_near(run(make), adamw_reference(0.1, 0.5, 0.7, 1e-3, 0.05), 1e-12);
}

TEST(AdamW, StepCountIsPerParameter) {
  Tensor a = Tensor::zeros({2}, DType::Float64).requires_grad_(true);
  Tensor b = Tensor::zeros({2}, DType::Float64).requires_grad_(true);
  AdamW opt({{"a", a}, {"b", b}}, 0.1);
  a.set_grad(Tensor::ones({2}, DType::Float64));
  opt.step();
  b.set_grad(Tensor::ones({2}, DType::Float64));
  opt.step();
  EXPECT_EQ(opt.step_count("a"), 2);
  EXPECT_EQ(opt.step_count("b"), 1);
  // b's first step is bias-corrected as a first step: |update| = lr for a constant gradient.
  EXPECT_NEAR(b.to_vector<double>()[0], -0.1, 1e-6);
}

// ---- state exposed for pruning ----

TEST(Optimizer, RestartMakesTheNextStepAFirstStep) {
  Tensor a = Tensor::zeros({2}, DType::Float64).requires_grad_(true);
  Tensor b = Tensor::zeros({2}, DType::Float64).requires_grad_(true);
  AdamW adam({{"a", a}, {"b", b}}, 0.1, 0.9, 0.999, 1e-8, /*weight_decay=*/0);
  for (int i = 0; i < 3; ++i) {
    a.set_grad(Tensor::from_vector<double>({1, -1}, {2}));
    b.set_grad(Tensor::from_vector<double>({1, -1}, {2}));
    adam.step();
  }
  adam.restart("a");
  EXPECT_EQ(adam.step_count("a"), 0);
  EXPECT_EQ(adam.state().count("a"), 0u);
  EXPECT_EQ(adam.step_count("b"), 3);  // only the named parameter forgets
  const double before = a.to_vector<double>()[0];
  a.set_grad(Tensor::from_vector<double>({-2, 2}, {2}));
  adam.step();
  // A first, bias-corrected step moves by lr against the gradient's sign, whatever came before.
  EXPECT_NEAR(a.to_vector<double>()[0] - before, 0.1, 1e-6);
  EXPECT_THROW(adam.restart("nope"), Error);

  Tensor w = Tensor::from_vector<double>({1.0}, {1}).requires_grad_(true);
  SGD sgd({{"w", w}}, 0.1, 0.9);
  w.set_grad(Tensor::from_vector<double>({1.0}, {1}));
  sgd.step();
  sgd.restart("w");
  w.set_grad(Tensor::from_vector<double>({1.0}, {1}));
  sgd.step();  // the buffer starts again at the gradient: w = 0.9 - 0.1
  EXPECT_NEAR(w.item(), 0.8, 1e-12);
}

TEST(Optimizer, StateCanBeSlicedWithTheParameter) {
  Tensor w = Tensor::from_vector<double>({1, 2, 3, 4}, {4}).requires_grad_(true);
  SGD opt({{"w", w}}, 0.1, 0.9);
  w.set_grad(Tensor::from_vector<double>({1, 1, 1, 1}, {4}));
  opt.step();
  // Keep elements {1, 3}: slice the parameter and its momentum buffer together.
  const Tensor kept = Tensor::from_vector<std::int64_t>({1, 3}, {2});
  Tensor small = index_select(w.detach(), 0, kept).requires_grad_(true);
  opt.set_parameter("w", small);
  small.set_grad(Tensor::from_vector<double>({1, 1}, {2}));
  EXPECT_THROW(opt.step(), Error);  // the buffer still has 4 elements: caught, not corrupted
  auto& buf = opt.state().at("w").at("momentum_buffer");
  buf = index_select(buf, 0, kept);
  opt.step();
  // buf = 0.9 * 1 + 1 = 1.9; w = (2 - 0.1) - 0.1 * 1.9.
  EXPECT_NEAR(small.to_vector<double>()[0], 1.9 - 0.19, 1e-12);
  EXPECT_NEAR(small.to_vector<double>()[1], 3.9 - 0.19, 1e-12);
  EXPECT_THROW(opt.set_parameter("nope", small), Error);
}

TEST(Optimizer, ExcludedParametersGetNoWeightDecay) {
  // With a zero gradient, only weight decay moves a parameter: SGD w -= lr*wd*w, AdamW w *= 1 - lr*wd.
  for (const bool adam : {false, true}) {
    Tensor w = Tensor::from_vector<double>({2.0}, {1}).requires_grad_(true);
    Tensor b = Tensor::from_vector<double>({2.0}, {1}).requires_grad_(true);
    std::unique_ptr<Optimizer> opt;
    if (adam) opt = std::make_unique<AdamW>(NamedTensors{{"w", w}, {"b", b}}, 0.1, 0.9, 0.999, 1e-8, 0.5);
    else opt = std::make_unique<SGD>(NamedTensors{{"w", w}, {"b", b}}, 0.1, 0.0, 0.0, 0.5);
    opt->exclude_from_weight_decay({"b"});
    w.set_grad(Tensor::zeros({1}, DType::Float64));
    b.set_grad(Tensor::zeros({1}, DType::Float64));
    opt->step();
    EXPECT_NEAR(w.item(), 2.0 * (1 - 0.1 * 0.5), 1e-12) << (adam ? "AdamW" : "SGD");
    EXPECT_EQ(b.item(), 2.0) << (adam ? "AdamW" : "SGD");
    EXPECT_THROW(opt->exclude_from_weight_decay({"nope"}), Error);
  }
}

TEST(Optimizer, LearningRateIsSettable) {
  Tensor w = Tensor::from_vector<double>({1.0}, {1}).requires_grad_(true);
  SGD opt({{"w", w}}, 0.1);
  opt.set_lr(0.25);
  EXPECT_EQ(opt.lr(), 0.25);
  w.set_grad(Tensor::from_vector<double>({2.0}, {1}));
  opt.step();
  EXPECT_EQ(w.item(), 0.5);
  EXPECT_THROW(opt.set_lr(-1), Error);
}

// ---- schedules ----

TEST(Schedule, StepAndMultiStep) {
  StepSchedule step(30, 0.1);
  EXPECT_DOUBLE_EQ(step.lr_at(1.0, 0), 1.0);
  EXPECT_DOUBLE_EQ(step.lr_at(1.0, 29), 1.0);
  EXPECT_DOUBLE_EQ(step.lr_at(1.0, 30), 0.1);
  EXPECT_DOUBLE_EQ(step.lr_at(1.0, 65), 0.01);
  MultiStepSchedule multi({30, 60}, 0.5);
  EXPECT_DOUBLE_EQ(multi.lr_at(0.2, 29), 0.2);
  EXPECT_DOUBLE_EQ(multi.lr_at(0.2, 30), 0.1);
  EXPECT_DOUBLE_EQ(multi.lr_at(0.2, 59), 0.1);
  EXPECT_DOUBLE_EQ(multi.lr_at(0.2, 60), 0.05);
  EXPECT_DOUBLE_EQ(multi.lr_at(0.2, 1000), 0.05);
}

TEST(Schedule, Cosine) {
  CosineSchedule cos(100, 0.001);
  EXPECT_DOUBLE_EQ(cos.lr_at(0.1, 0), 0.1);
  EXPECT_NEAR(cos.lr_at(0.1, 50), 0.001 + 0.099 / 2, 1e-15);
  EXPECT_NEAR(cos.lr_at(0.1, 25), 0.001 + 0.099 * (1 + std::sqrt(0.5)) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(cos.lr_at(0.1, 100), 0.001);
  EXPECT_DOUBLE_EQ(cos.lr_at(0.1, 150), 0.001);  // held, not rising again
}

TEST(Schedule, WarmupThenSchedule) {
  auto s = parse_schedule("warmup:5+cosine", 105);
  EXPECT_DOUBLE_EQ(s->lr_at(1.0, 0), 0.2);
  EXPECT_DOUBLE_EQ(s->lr_at(1.0, 3), 0.8);
  EXPECT_DOUBLE_EQ(s->lr_at(1.0, 4), 1.0);
  EXPECT_DOUBLE_EQ(s->lr_at(1.0, 5), 1.0);                 // cosine starts at t = 5
  EXPECT_NEAR(s->lr_at(1.0, 55), 0.5, 1e-15);              // T_max = 105 - 5 = 100
  EXPECT_NEAR(s->lr_at(1.0, 105), 0.0, 1e-15);
  auto w = parse_schedule("warmup:4");
  EXPECT_DOUBLE_EQ(w->lr_at(2.0, 1), 1.0);
  EXPECT_DOUBLE_EQ(w->lr_at(2.0, 40), 2.0);
  auto ws = parse_schedule("warmup:2+step:10:0.5");
  EXPECT_DOUBLE_EQ(ws->lr_at(1.0, 11), 1.0);
  EXPECT_DOUBLE_EQ(ws->lr_at(1.0, 12), 0.5);
}

TEST(Schedule, ParserForms) {
  EXPECT_EQ(parse_schedule("constant")->describe(), "constant");
  EXPECT_EQ(parse_schedule("step:30:0.1")->describe(), "step:30:0.1");
  EXPECT_EQ(parse_schedule("step:30")->describe(), "step:30:0.1");
  EXPECT_EQ(parse_schedule("multistep:30,60:0.2")->describe(), "multistep:30,60:0.2");
  EXPECT_EQ(parse_schedule("cosine", 90)->describe(), "cosine:90:0");
  EXPECT_EQ(parse_schedule("cosine:50:0.001")->describe(), "cosine:50:0.001");
  EXPECT_EQ(parse_schedule("warmup:5+cosine", 90)->describe(), "warmup:5+cosine:85:0");
  EXPECT_DOUBLE_EQ(parse_schedule("multistep:30,60:0.1")->lr_at(1.0, 60), 0.01);
}

TEST(Schedule, BadStringsListValidForms) {
  for (const char* bad : {"", "cos", "step", "step:0", "step:x:0.1", "step:30:0.1:9",
                          "multistep:60,30", "multistep::0.1", "cosine", "cosine:-5",
                          "warmup:0+cosine", "warmup:5+linear", "warmup:+step:3"}) {
    try {
      parse_schedule(bad);  // total = 0: a bare cosine has no length
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      const std::string msg = e.what();
      if (msg.find("Schedule:") == std::string::npos) {  // constructor checks name the class
        EXPECT_NE(msg.find("multistep:M1,M2"), std::string::npos) << bad << ": " << msg;
      }
    }
  }
}

// ---- CUDA: the fused kernels and Module::to on the GPU agree with the CPU ----

TEST(OptimizerCuda, UpdatesMatchCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  for (int which = 0; which < 2; ++which) {
    SCOPED_TRACE(which == 0 ? "SGD" : "AdamW");
    auto make = [which](NamedTensors p) -> std::unique_ptr<Optimizer> {
      if (which == 0) return std::make_unique<SGD>(p, 0.05, 0.9, 0, 1e-3, true);
      return std::make_unique<AdamW>(p, 0.01, 0.9, 0.999, 1e-8, 0.01);
    };
    Tensor w = Tensor::from_vector(kInit, {5}).to(Device::cuda()).requires_grad_(true);
    auto opt = make(NamedTensors{{"w", w}});
    for (int s = 0; s < kSteps; ++s) {
      w.set_grad(Tensor::from_vector(grad_at(s), {5}).to(Device::cuda()));
      opt->step();
    }
    expect_near(w.to_vector<double>(), run(make), 1e-12);
  }
}
