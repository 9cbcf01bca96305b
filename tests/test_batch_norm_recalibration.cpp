// nn/batch_norm_recalibration.h: after recalibration every BatchNorm's running statistics are
// its input's batch mean and unbiased variance (the reference oracle's, in double),
// averaged over the passes; dropout stays off; modes and momenta come back; parameters are
// untouched; bad arguments are refused. (test_prune_schedule: the schedule's recalibrate_bn.)
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "core/shrink.h"
#include "kernels/reference/batch_norm.h"
#include "nn/activation.h"
#include "nn/batch_norm.h"
#include "nn/batch_norm_recalibration.h"
#include "nn/conv.h"
#include "nn/dropout.h"
#include "nn/models.h"
#include "nn/sequential.h"
#include "tests/test_helpers.h"

using namespace shrink;
using shrink::testing::error_of;

namespace {

// One training-mode BatchNorm pass of the reference oracle (kernels/reference/batch_norm.h,
// double) over x (n, c, h, w) with bn's weight and bias: the batch mean and unbiased variance
// (its running statistics after one update at momentum 1) and the normalised output.
struct ReferencePass {
  std::vector<double> mean, unbiased_var;
  Tensor y;
};
ReferencePass reference_pass(const Tensor& x, const nn::BatchNorm2d& bn) {
  const std::int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  const auto xs = shrink::testing::to_doubles(x.detach().to_vector<float>());
  const auto gamma = shrink::testing::to_doubles(bn.parameter("weight").to_vector<float>());
  const auto beta = shrink::testing::to_doubles(bn.parameter("bias").to_vector<float>());
  const auto cs = static_cast<std::size_t>(c);
  ReferencePass out{std::vector<double>(cs), std::vector<double>(cs), {}};
  std::vector<double> save_mean(cs), save_invstd(cs), y(xs.size());
  kernels::reference::batch_norm(n, c, hw, /*training=*/true, /*momentum=*/1.0, bn.eps(), xs.data(), gamma.data(),
                                 beta.data(), out.mean.data(), out.unbiased_var.data(), save_mean.data(),
                                 save_invstd.data(), y.data());
  out.y = Tensor::from_vector(std::vector<float>(y.begin(), y.end()), x.shape());
  return out;
}

void expect_running_stats(const nn::BatchNorm2d& bn, const std::vector<double>& mean, const std::vector<double>& var,
                          const char* label) {
  const auto got_mean = bn.buffer("running_mean").to_vector<float>();
  const auto got_var = bn.buffer("running_var").to_vector<float>();
  ASSERT_EQ(got_mean.size(), mean.size()) << label;
  for (std::size_t k = 0; k < mean.size(); ++k) {
    EXPECT_NEAR(got_mean[k], mean[k], 1e-5 * (1 + std::abs(mean[k]))) << label << " mean, channel " << k;
    EXPECT_NEAR(got_var[k], var[k], 1e-4 * (1 + var[k])) << label << " variance, channel " << k;
  }
}

// Stale statistics far from anything the data gives, so that a recalibration that did not
// happen shows.
void make_stale(nn::BatchNorm2d& bn) {
  const Shape c{bn.num_features()};
  bn.set_buffer("running_mean", Tensor::full(c, 7.0f));
  bn.set_buffer("running_var", Tensor::full(c, 50.0f));
}

struct ConvNet {
  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::Sequential> seq;
  explicit ConvNet(Generator& gen) {
    conv1 = std::make_shared<nn::Conv2d>(3, 4, nn::Conv2dGeometry{3, 3, 1, 1, 1, 1}, /*bias=*/false, gen);
    conv2 = std::make_shared<nn::Conv2d>(4, 5, nn::Conv2dGeometry{3, 3, 1, 0, 1, 1}, /*bias=*/true, gen);
    bn1 = std::make_shared<nn::BatchNorm2d>(4);
    bn2 = std::make_shared<nn::BatchNorm2d>(5, 1e-5, 0.3);
    Generator affine(3);
    bn1->set_parameter("weight", Tensor::uniform({4}, 0.5, 1.5, affine));
    bn1->set_parameter("bias", Tensor::uniform({4}, -0.5, 0.5, affine));
    make_stale(*bn1);
    make_stale(*bn2);
    seq = std::make_shared<nn::Sequential>(
        std::vector<std::shared_ptr<nn::Module>>{conv1, bn1, nn::make_activation("relu"), conv2, bn2});
  }
  // What each BatchNorm sees in a training-mode pass over x: (bn1's input, bn2's input).
  std::pair<Tensor, Tensor> batch_norm_inputs(const Tensor& x) {
    NoGradGuard no_grad;
    const Tensor h1 = (*conv1)(x);
    const Tensor h2 = (*conv2)(relu(reference_pass(h1, *bn1).y));
    return {h1, h2};
  }
};

TEST(RecalibrateBatchNorm, OnePassGivesEachInputsBatchMeanAndUnbiasedVariance) {
  Generator gen(1);
  ConvNet net(gen);
  Generator data(2);
  const Tensor x = Tensor::randn({6, 3, 7, 8}, data);
  const auto [h1, h2] = net.batch_norm_inputs(x);
  EXPECT_EQ(nn::recalibrate_batch_norm(*net.seq, x, /*batch_size=*/6), 2);
  const ReferencePass s1 = reference_pass(h1, *net.bn1), s2 = reference_pass(h2, *net.bn2);
  expect_running_stats(*net.bn1, s1.mean, s1.unbiased_var, "bn1");
  expect_running_stats(*net.bn2, s2.mean, s2.unbiased_var, "bn2 (behind bn1 in training mode)");
}

TEST(RecalibrateBatchNorm, PassesAreAveragedEquallyAndNoneHasALoneSample) {
  Generator gen(4);
  ConvNet net(gen);
  Generator data(5);
  // 7 samples in passes of at least 3: floor(7 / 3) = 2 passes, samples [0, 3) and [3, 7).
  const Tensor x = Tensor::randn({7, 3, 5, 5}, data);
  const Tensor first = slice(x, 0, 0, 3), second = slice(x, 0, 3, 7);
  const auto [a1, a2] = net.batch_norm_inputs(first);
  const auto [b1, b2] = net.batch_norm_inputs(second);
  EXPECT_EQ(nn::recalibrate_batch_norm(*net.seq, x, /*batch_size=*/3), 2);
  const ReferencePass sa = reference_pass(a1, *net.bn1), sb = reference_pass(b1, *net.bn1);
  const ReferencePass ta = reference_pass(a2, *net.bn2), tb = reference_pass(b2, *net.bn2);
  auto average = [](const std::vector<double>& p, const std::vector<double>& q) {
    std::vector<double> out(p.size());
    for (std::size_t k = 0; k < p.size(); ++k) out[k] = (p[k] + q[k]) / 2;
    return out;
  };
  expect_running_stats(*net.bn1, average(sa.mean, sb.mean), average(sa.unbiased_var, sb.unbiased_var), "bn1");
  expect_running_stats(*net.bn2, average(ta.mean, tb.mean), average(ta.unbiased_var, tb.unbiased_var), "bn2");
}

TEST(RecalibrateBatchNorm, LeavesParametersModesAndMomentaAsTheyWere) {
  Generator gen(6);
  ConvNet net(gen);
  auto before = net.seq->named_parameters();
  std::vector<std::vector<float>> values;
  for (auto& [name, t] : before) values.push_back(t.to_vector<float>());
  Generator data(7);
  const Tensor x = Tensor::randn({4, 3, 6, 6}, data);
  for (bool training : {true, false}) {
    net.seq->train(training);
    nn::recalibrate_batch_norm(*net.seq, x);
    EXPECT_EQ(net.seq->is_training(), training);
    EXPECT_EQ(net.bn1->is_training(), training);
    EXPECT_EQ(net.bn1->momentum(), 0.1);
    EXPECT_EQ(net.bn2->momentum(), 0.3);
  }
  std::size_t i = 0;
  for (auto& [name, t] : net.seq->named_parameters()) EXPECT_EQ(t.to_vector<float>(), values[i++]) << name;
}

TEST(RecalibrateBatchNorm, DropoutStaysOffDuringThePasses) {
  // Dropout(0.9) in training mode would zero most of bn's input and scale the rest by 10:
  // the recalibrated statistics must be those of the undropped input.
  Generator gen(8);
  auto conv = std::make_shared<nn::Conv2d>(2, 3, nn::Conv2dGeometry{1, 1, 1, 0, 1, 1}, false, gen);
  auto bn = std::make_shared<nn::BatchNorm2d>(3);
  make_stale(*bn);
  nn::Sequential seq({conv, std::make_shared<nn::Dropout>(0.9, gen), bn});
  seq.train(true);
  Generator data(9);
  const Tensor x = Tensor::randn({5, 2, 4, 4}, data);
  Tensor h;
  {
    NoGradGuard no_grad;
    h = (*conv)(x);
  }
  nn::recalibrate_batch_norm(seq, x);
  const ReferencePass s = reference_pass(h, *bn);
  expect_running_stats(*bn, s.mean, s.unbiased_var, "bn behind dropout");
}

TEST(RecalibrateBatchNorm, RefusesTooFewSamplesAndDoesNothingWithoutBatchNorms) {
  Generator gen(10);
  ConvNet net(gen);
  Generator data(11);
  EXPECT_NE(error_of([&] { nn::recalibrate_batch_norm(*net.seq, Tensor::randn({1, 3, 5, 5}, data)); })
                .find("recalibrate_batch_norm: needs at least 2 samples, got 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { nn::recalibrate_batch_norm(*net.seq, Tensor::randn({4, 3, 5, 5}, data), 1); })
                .find("batch_size must be >= 2, got 1"),
            std::string::npos);
  EXPECT_EQ(net.bn1->buffer("running_mean").to_vector<float>(), std::vector<float>(4, 7.0f));  // untouched
  auto plain = std::make_shared<nn::Conv2d>(3, 2, nn::Conv2dGeometry{3, 3, 1, 1, 1, 1}, false, gen);
  EXPECT_EQ(nn::recalibrate_batch_norm(*plain, Tensor::randn({4, 3, 5, 5}, data)), 0);
}

}  // namespace
