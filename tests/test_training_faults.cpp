// Numerical faults in training: a NaN/Inf loss or gradient stops train_epoch before the
// optimizer touches the weights, with a message naming the step and the first offending
// tensor; with a NonFiniteGuard the step is skipped and the learning rate lowered, a bounded
// number of times; evaluation refuses a non-finite loss instead of reporting a figure.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "core/random.h"
#include "nn/activation.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "nn/training.h"
#include "tests/test_helpers.h"

namespace shrink::nn {
namespace {

using shrink::testing::error_of;

constexpr float kHuge = 3e38f;  // near float's maximum: 45 times it overflows to inf

// Linear(2,1) -> tanh -> Linear(1,2) with weights chosen so that the input (kHuge, -kHuge)
// cancels exactly in the first layer (h = 0, a finite loss) while the first layer's weight
// gradient, upstream * x = 100 * tanh'(0) * (p - y) * kHuge, overflows to inf.
std::shared_ptr<Sequential> cancelling_model() {
  auto model = std::make_shared<Sequential>();
  model->push_back(std::make_shared<Linear>(Tensor::from_vector(std::vector<float>{1, 1}, {1, 2}),
                                            Tensor::zeros({1}, DType::Float32)));
  model->push_back(make_activation("tanh"));
  model->push_back(std::make_shared<Linear>(Tensor::from_vector(std::vector<float>{100, -100}, {2, 1}),
                                            Tensor::zeros({2}, DType::Float32)));
  return model;
}

// `count` batches of one sample each; batch `bad_at` (from 1) holds `bad`, the others 1s.
BatchSource batches(int count, int bad_at, std::vector<float> bad) {
  auto next = std::make_shared<int>(0);
  return [=]() -> std::optional<LabeledBatch> {
    if (*next >= count) return std::nullopt;
    ++*next;
    std::vector<float> x = *next == bad_at ? bad : std::vector<float>{0.5f, -0.25f};
    return LabeledBatch{Tensor::from_vector(x, {1, 2}), Tensor::from_vector(std::vector<std::int64_t>{0}, {1})};
  };
}

std::vector<float> weights_of(Module& m) {
  std::vector<float> all;
  for (const auto& [name, p] : m.named_parameters()) {
    const std::vector<float> v = p.detach().to_vector<float>();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

TEST(TrainingFaults, InfiniteGradientStopsBeforeTheUpdateNamingStepAndTensor) {
  auto model = cancelling_model();
  SGD opt(model->named_parameters(), 0.1);
  // Two good steps, then the overflowing one: the weights must be those after step 2.
  auto reference = cancelling_model();
  SGD ref_opt(reference->named_parameters(), 0.1);
  train_epoch(*reference, ref_opt, batches(2, 0, {}), Device::cpu());
  try {
    train_epoch(*model, opt, batches(4, 3, {kHuge, -kHuge}), Device::cpu());
    FAIL() << "an infinite gradient did not stop training";
  } catch (const NonFiniteError& e) {
    EXPECT_EQ(e.step, 3);
    const std::string m = e.what();
    EXPECT_NE(m.find("step 3: the gradient of '0.weight' holds"), std::string::npos) << m;
    EXPECT_NE(m.find("inf at element"), std::string::npos) << m;
  }
  EXPECT_EQ(weights_of(*model), weights_of(*reference));
}

TEST(TrainingFaults, NanLossStopsAndNamesTheLoss) {
  auto model = cancelling_model();
  SGD opt(model->named_parameters(), 0.1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::string m = error_of([&] { train_epoch(*model, opt, batches(3, 2, {nan, 1}), Device::cpu()); });
  EXPECT_NE(m.find("step 2: the loss is nan"), std::string::npos) << m;
  EXPECT_NE(m.find("every parameter is finite"), std::string::npos) << m;
}

TEST(TrainingFaults, GuardSkipsStepsAndLowersTheLearningRateThenStops) {
  auto model = cancelling_model();
  SGD opt(model->named_parameters(), 0.1);
  NonFiniteGuard guard;
  guard.retries = 1;
  guard.lr_factor = 0.25;
  std::vector<std::string> warnings;
  guard.on_skip = [&](const std::string& w) { warnings.push_back(w); };
  const EpochResult r = train_epoch(*model, opt, batches(4, 2, {kHuge, -kHuge}), Device::cpu(), 0.0, {}, nullptr, &guard);
  EXPECT_EQ(r.samples, 3);  // the skipped step counts no samples
  EXPECT_EQ(guard.skipped, 1);
  EXPECT_DOUBLE_EQ(guard.lr_scale, 0.25);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.025);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("step 2: the gradient of '0.weight'"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("retry 1 of 1"), std::string::npos) << warnings[0];
  // The retry is spent: the next fault stops, saying so.
  const std::string m = error_of([&] {
    train_epoch(*model, opt, batches(2, 1, {kHuge, -kHuge}), Device::cpu(), 0.0, {}, nullptr, &guard);
  });
  EXPECT_NE(m.find("all 1 retries used"), std::string::npos) << m;
}

TEST(TrainingFaults, EvaluationRefusesANonFiniteLoss) {
  auto model = cancelling_model();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::string m = error_of([&] { evaluate(*model, batches(2, 2, {nan, 0}), Device::cpu()); });
  EXPECT_NE(m.find("evaluate: the loss of batch 2"), std::string::npos) << m;
}

}  // namespace
}  // namespace shrink::nn
