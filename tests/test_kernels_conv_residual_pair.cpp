// conv2d_residual_pair (kernels/kernel_list.h): a residual block's two convolutions in one call,
//   y = relu(conv(relu(conv(x, w1) + b1), w2) + b2 + x).
// Where both convolutions run the channels-last Winograd (kernels/cpu/conv_winograd_channels_last.h
// residual_pair_fuses), the first writes the second's padded input directly; elsewhere the backend
// runs two conv2d calls. Either way the result must be bit for bit the two conv2d calls with
// their epilogues (ReLU; + x and ReLU), so a model that fuses its blocks changes no output; and
// within float rounding of the reference loops. Odd channel counts (vector tails), partial
// Winograd tiles, the generic-stride multiply past 16 channels, with and without biases, on one
// thread and two.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/conv_winograd_channels_last.h"
#include "kernels/reference/conv.h"
#include "tests/conv_shapes.h"
#include "tests/cpu_kernel_test.h"
#include "tests/omp_threads_test.h"

namespace shrink::kernels {
namespace {

struct Pair {
  std::int64_t n, c, m, h, w;
  bool fuses_on_two_threads;  // residual_pair_fuses with 2 threads (it asks for 2 images a thread)
};

const Pair kPairs[] = {
    {4, 8, 8, 32, 32, true},     // a pruned CIFAR ResNet's first stage
    {4, 8, 8, 16, 16, true},     // its second stage
    {4, 16, 16, 8, 8, true},     // its third stage
    {5, 13, 12, 7, 9, true},     // odd widths, partial tiles on both edges
    {4, 24, 40, 10, 11, true},   // strides past 16 floats: the generic multiply
    {1, 8, 8, 16, 16, false},    // one image: two conv2d calls (bands of one image)
    {3, 4, 4, 9, 9, false},      // 4 -> 4: not the channels-last kernel
    {4, 16, 16, 32, 32, false},  // 16 -> 16 on 32x32: the batched Winograd, apart
};

Conv2dShape first_conv(const Pair& p) { return testing::conv_shape(p.n, p.c, p.h, p.w, p.m, 3, 3, 1, 1, 1, 1, 1, 1, 1); }
Conv2dShape second_conv(const Pair& p) { return testing::conv_shape(p.n, p.m, p.h, p.w, p.c, 3, 3, 1, 1, 1, 1, 1, 1, 1); }

std::string describe(const Pair& p) {
  return "n=" + std::to_string(p.n) + " " + std::to_string(p.c) + "->" + std::to_string(p.m) + "->" +
         std::to_string(p.c) + " " + std::to_string(p.h) + "x" + std::to_string(p.w);
}

using ResidualPairThreads = testing::OmpThreadsTest;

TEST_P(ResidualPairThreads, MatchesTwoConvolutionsBitForBitAndTheReferenceLoops) {
  for (const Pair& p : kPairs) {
    const Conv2dShape s1 = first_conv(p), s2 = second_conv(p);
    if (GetParam() == 2) {  // the table covers both paths
      EXPECT_EQ(cpu::residual_pair_fuses(s1, s2), p.fuses_on_two_threads) << describe(p);
    }
    const std::int64_t x_size = p.n * p.c * p.h * p.w, mid_size = p.n * p.m * p.h * p.w;
    const auto x = random_vec<float>(x_size, -1, 1, 1);
    const auto w1 = random_vec<float>(p.m * p.c * 9, -0.4, 0.4, 2);
    const auto b1 = random_vec<float>(p.m, -0.5, 0.5, 3);
    const auto w2 = random_vec<float>(p.c * p.m * 9, -0.4, 0.4, 4);
    const auto b2 = random_vec<float>(p.c, -0.5, 0.5, 5);
    for (bool biases : {true, false}) {
      const float* bias1 = biases ? b1.data() : nullptr;
      const float* bias2 = biases ? b2.data() : nullptr;
      const std::string what = describe(p) + (biases ? " with biases" : " without biases");
      std::vector<float> got(static_cast<std::size_t>(x_size), -7.0f);
      cpu().conv2d_residual_pair(DType::Float32, s1, s2, x.data(), w1.data(), bias1, w2.data(), bias2, got.data());

      ConvEpilogue relu;
      relu.activate = true;
      ConvEpilogue add_relu = relu;
      add_relu.residual = x.data();
      std::vector<float> mid(static_cast<std::size_t>(mid_size)), want(static_cast<std::size_t>(x_size));
      cpu().conv2d(DType::Float32, s1, x.data(), w1.data(), bias1, relu, mid.data());
      cpu().conv2d(DType::Float32, s2, mid.data(), w2.data(), bias2, add_relu, want.data());
      std::size_t differ = 0;
      for (std::size_t i = 0; i < got.size(); ++i) differ += std::memcmp(&got[i], &want[i], sizeof(float)) != 0;
      EXPECT_EQ(differ, 0u) << what << ": outputs differing from the two conv2d calls";

      // The reference loops, in double.
      const auto dx = to_doubles(x), dw1 = to_doubles(w1), dw2 = to_doubles(w2);
      const auto db1 = to_doubles(b1), db2 = to_doubles(b2);
      std::vector<double> h(static_cast<std::size_t>(mid_size)), y(static_cast<std::size_t>(x_size));
      reference::conv2d(s1, dx.data(), dw1.data(), biases ? db1.data() : nullptr, h.data());
      for (double& v : h) v = v > 0 ? v : 0;
      reference::conv2d(s2, h.data(), dw2.data(), biases ? db2.data() : nullptr, y.data());
      double worst = 0;
      for (std::size_t i = 0; i < y.size(); ++i) {
        const double ref = std::max(y[i] + dx[i], 0.0);
        worst = std::max(worst, std::fabs(got[i] - ref) / (1 + std::fabs(ref)));
      }
      EXPECT_LT(worst, 1e-4) << what << ": against the reference loops";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, ResidualPairThreads, ::testing::Values(1, 2));

}  // namespace
}  // namespace shrink::kernels
