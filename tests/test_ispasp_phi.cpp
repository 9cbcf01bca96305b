// i-SpaSP's proxy phi in closed form (prune/ispasp_phi.h) against the autograd definition
// on the blocks of the model families: convs of every geometry (padding, stride, dilation,
// odd kernels, groups, depthwise with a multiplier, 1x1), Linear on (N, m) and (N, T, m),
// a Linear reading a flattened map, each with and without a BatchNorm after it, for an
// empty support (V keeps the bias and BN shift), a small one and nearly all units. Float64
// throughout, so the two must agree to rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/shrink.h"
#include "nn/activation.h"
#include "nn/batch_norm.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "prune/ispasp_phi.h"

namespace shrink::prune {
namespace {

using Indices = std::vector<std::int64_t>;

Tensor randn64(const Shape& shape, Generator& gen, double scale = 1.0) {
  return Tensor::randn(shape, gen, DType::Float64) * scale;
}

// A BatchNorm with non-trivial affine parameters and running statistics.
std::shared_ptr<nn::BatchNorm2d> random_norm(std::int64_t channels, Generator& gen) {
  auto bn = std::make_shared<nn::BatchNorm2d>(channels);
  bn->set_parameter("weight", randn64({channels}, gen));
  bn->set_parameter("bias", randn64({channels}, gen));
  bn->set_buffer("running_mean", randn64({channels}, gen));
  bn->set_buffer("running_var", abs(randn64({channels}, gen)) + 0.5);
  bn->eval();
  return bn;
}

// Both ways of computing phi for three supports; they agree to 1e-9 of the largest |phi|.
void expect_closed_form_matches(const IspaspBlock& block, const std::vector<Tensor>& hidden,
                                std::int64_t axis, std::int64_t units) {
  const std::optional<ClosedFormPhi> closed = ClosedFormPhi::make(block, hidden, units);
  ASSERT_TRUE(closed.has_value()) << "the block has a closed form";
  Indices most;
  for (std::int64_t j = 0; j < units; ++j)
    if (j != 1) most.push_back(j);
  for (const Indices& support : {Indices{}, Indices{0, units - 1}, most}) {
    const Scores reference = autograd_phi(block, hidden, axis, support, units, /*batch_size=*/3);
    const Scores phi = (*closed)(support);
    ASSERT_EQ(phi.size(), reference.size());
    double scale = 1.0;
    for (double r : reference) scale = std::max(scale, std::abs(r));
    for (std::size_t j = 0; j < phi.size(); ++j)
      EXPECT_NEAR(phi[j], reference[j], 1e-9 * scale) << "unit " << j << ", support of " << support.size();
  }
}

struct ConvCase {
  std::int64_t in, out, kh, kw, stride, padding, dilation, groups, height, width;
  bool norm, bias;
};

class IspaspPhiConv : public ::testing::TestWithParam<ConvCase> {};

TEST_P(IspaspPhiConv, ClosedFormEqualsAutograd) {
  const ConvCase c = GetParam();
  Generator gen(7);
  const nn::Conv2dGeometry g{c.kh, c.kw, c.stride, c.padding, c.dilation, c.groups};
  nn::Conv2d conv(randn64({c.out, c.in / c.groups, c.kh, c.kw}, gen), c.bias ? randn64({c.out}, gen) : Tensor(), g);
  const auto norm = c.norm ? random_norm(c.out, gen) : nullptr;
  // Two calibration batches of different sizes; a positive mean as after a ReLU.
  const std::vector<Tensor> hidden{randn64({5, c.in, c.height, c.width}, gen) + 0.3,
                                   randn64({2, c.in, c.height, c.width}, gen) + 0.3};
  expect_closed_form_matches(IspaspBlock{conv, norm.get(), false}, hidden, 1, c.in);
}

INSTANTIATE_TEST_SUITE_P(
    Geometries, IspaspPhiConv,
    ::testing::Values(ConvCase{6, 5, 3, 3, 1, 1, 1, 1, 8, 8, true, false},    // ResNet's 3x3 + BN
                      ConvCase{6, 4, 3, 3, 2, 1, 1, 1, 7, 9, false, true},    // strided, odd map, bias
                      ConvCase{6, 6, 3, 2, 1, 2, 2, 1, 9, 7, true, true},     // odd kernel, dilation
                      ConvCase{6, 4, 3, 3, 3, 0, 1, 2, 11, 10, true, false},  // groups 2, stride 3
                      ConvCase{6, 6, 3, 3, 1, 1, 1, 6, 6, 6, true, false},    // depthwise
                      ConvCase{6, 12, 5, 5, 2, 2, 1, 6, 9, 9, false, true},   // depthwise, multiplier 2
                      ConvCase{6, 10, 1, 1, 1, 0, 1, 1, 5, 5, true, false},   // MobileNetV2's project
                      ConvCase{6, 3, 1, 1, 2, 0, 1, 1, 7, 7, false, true},    // 1x1 shortcut, stride 2
                      ConvCase{4, 3, 5, 5, 1, 1, 1, 1, 4, 4, false, true}));  // kernel wider than the map

TEST(IspaspPhi, LinearOnRowsAndSequences) {
  Generator gen(3);
  const std::int64_t m = 7, k = 4;
  nn::Linear fc(randn64({k, m}, gen), randn64({k}, gen));
  const auto norm = random_norm(k, gen);
  const std::vector<Tensor> rows{randn64({6, m}, gen) + 0.2, randn64({3, m}, gen)};
  expect_closed_form_matches(IspaspBlock{fc, nullptr, false}, rows, 1, m);
  expect_closed_form_matches(IspaspBlock{fc, norm.get(), false}, rows, 1, m);
  const std::vector<Tensor> sequences{randn64({2, 5, m}, gen) + 0.2, randn64({1, 5, m}, gen)};  // (N, T, m)
  expect_closed_form_matches(IspaspBlock{fc, nullptr, false}, sequences, 2, m);
}

TEST(IspaspPhi, LinearReadingAFlattenedMap) {
  Generator gen(4);
  const std::int64_t m = 5, block = 6, k = 3;  // LeNet-5's fc1 reads 16 channels x 25 positions
  nn::Linear fc(randn64({k, m * block}, gen), randn64({k}, gen));
  const auto norm = random_norm(k, gen);
  const std::vector<Tensor> hidden{randn64({4, m, block, 1}, gen) + 0.2, randn64({3, m, block, 1}, gen)};
  expect_closed_form_matches(IspaspBlock{fc, nullptr, true}, hidden, 1, m);
  expect_closed_form_matches(IspaspBlock{fc, norm.get(), true}, hidden, 1, m);
}

TEST(IspaspPhi, OtherBlocksHaveNoClosedForm) {
  Generator gen(5);
  nn::Linear fc(randn64({3, 4}, gen), Tensor());
  const std::vector<Tensor> hidden{randn64({2, 4}, gen)};
  auto relu = nn::make_activation("relu");  // not a BatchNorm after the consumer
  EXPECT_FALSE(ClosedFormPhi::make(IspaspBlock{fc, relu.get(), false}, hidden, 4).has_value());
  EXPECT_FALSE(ClosedFormPhi::make(IspaspBlock{*relu, nullptr, false}, hidden, 4).has_value());
  EXPECT_FALSE(ClosedFormPhi::make(IspaspBlock{fc, nullptr, false}, {}, 4).has_value());
  EXPECT_TRUE(ClosedFormPhi::make(IspaspBlock{fc, nullptr, false}, hidden, 4).has_value());
}

}  // namespace
}  // namespace shrink::prune
