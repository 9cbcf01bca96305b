// conv2d_residual_chain (kernels/kernel_list.h): residual blocks with identity shortcuts in one
// call, block b mapping x_b to relu(conv(relu(conv(x_b, w1) + b1), w2) + b2 + x_b).
// Runs of blocks whose convolutions all run the channels-last Winograd
// (kernels/cpu/conv_winograd_channels_last.h residual_pair_fuses) go through it at once, the maps
// between them kept channels-last; the other blocks are two conv2d calls. The result must be bit
// for bit the channels-last kernel's calls with their epilogues (ReLU; + the block's input and
// ReLU) for a fused block, the conv2d calls for the others (conv2d itself picks the channels-last
// kernel for most fused layers, the batched Winograd for the 32x32 ones with more than 8 outputs);
// and within float rounding of the reference loops. Chains of one to three blocks, fused runs broken by a block that is not, odd channel
// counts (vector tails), partial Winograd tiles, the generic-stride multiply past 16 channels,
// with and without biases, on one thread and two.
#include <gtest/gtest.h>

#include <algorithm>
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

struct Chain {
  std::int64_t n, c, h, w;
  std::vector<std::int64_t> mids;    // each block's intermediate width
  std::vector<bool> fuses_on_two;    // residual_pair_fuses per block with 2 threads (2 images a thread)
};

const Chain kChains[] = {
    {4, 8, 32, 32, {8}, {true}},                        // a pruned CIFAR ResNet's first stage, one block
    {4, 8, 16, 16, {8, 8, 8}, {true, true, true}},      // its second stage, three blocks
    {4, 16, 8, 8, {16, 8}, {true, true}},               // its third stage, block-inner widths differ
    {5, 13, 7, 9, {12, 13}, {true, true}},              // odd widths, partial tiles on both edges
    {4, 24, 10, 11, {40}, {true}},                      // strides past 16 floats: the generic multiply
    {4, 32, 16, 16, {32}, {true}},                      // strides of 32 floats (a ResNet-20's second stage)
    {4, 32, 8, 8, {64}, {true}},                        // 32 and 64 floats each way
    {4, 8, 16, 16, {8, 4, 8, 8}, {true, false, true, true}},  // a fused run, a block apart, a run
    {4, 8, 16, 16, {4, 8}, {false, true}},              // apart first
    {1, 8, 16, 16, {8, 8}, {false, false}},             // one image: every block apart
    {4, 16, 32, 32, {16, 8}, {true, true}},             // 32x32 layers conv2d gives the batched Winograd
    {4, 64, 8, 8, {64}, {false}},                       // 64 -> 64 on 8x8: not in a chain
};

Conv2dShape shape(std::int64_t n, std::int64_t c_in, std::int64_t h, std::int64_t w, std::int64_t c_out) {
  return testing::conv_shape(n, c_in, h, w, c_out, 3, 3, 1, 1, 1, 1, 1, 1, 1);
}

std::string describe(const Chain& ch) {
  std::string s = "n=" + std::to_string(ch.n) + " " + std::to_string(ch.h) + "x" + std::to_string(ch.w) + " " +
                  std::to_string(ch.c);
  for (std::int64_t m : ch.mids) s += "->" + std::to_string(m) + "->" + std::to_string(ch.c);
  return s;
}

using ResidualChainThreads = testing::OmpThreadsTest;

TEST_P(ResidualChainThreads, MatchesTheConvolutionsBitForBitAndTheReferenceLoops) {
  for (const Chain& ch : kChains) {
    const auto blocks = static_cast<std::int64_t>(ch.mids.size());
    std::vector<Conv2dShape> s1, s2;
    std::vector<std::vector<float>> w1, b1, w2, b2;
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t m = ch.mids[static_cast<std::size_t>(b)];
      s1.push_back(shape(ch.n, ch.c, ch.h, ch.w, m));
      s2.push_back(shape(ch.n, m, ch.h, ch.w, ch.c));
      if (GetParam() == 2) {  // the table covers both paths
        EXPECT_EQ(cpu::residual_pair_fuses(s1.back(), s2.back()), ch.fuses_on_two[static_cast<std::size_t>(b)])
            << describe(ch) << " block " << b;
      }
      const std::uint64_t seed = 10 * static_cast<std::uint64_t>(b);
      // Weights within 0.4 sqrt(72 / fan-in) (0.4 at 8 channels in): the maps keep their scale
      // through wide blocks, as with a model's initialisation, so the tolerance below reads the
      // same at 8 channels and at 64 (Winograd's rounding grows with the sum of |terms|).
      const auto bound = [](std::int64_t c_in) { return 0.4 * std::sqrt(72.0 / static_cast<double>(9 * c_in)); };
      w1.push_back(random_vec<float>(m * ch.c * 9, -bound(ch.c), bound(ch.c), seed + 2));
      b1.push_back(random_vec<float>(m, -0.5, 0.5, seed + 3));
      w2.push_back(random_vec<float>(ch.c * m * 9, -bound(m), bound(m), seed + 4));
      b2.push_back(random_vec<float>(ch.c, -0.5, 0.5, seed + 5));
    }
    const std::int64_t size = ch.n * ch.c * ch.h * ch.w;
    const auto x = random_vec<float>(size, -1, 1, 1);
    for (bool biases : {true, false}) {
      const std::string what = describe(ch) + (biases ? " with biases" : " without biases");
      std::vector<const void*> pw1, pb1, pw2, pb2;
      for (std::int64_t b = 0; b < blocks; ++b) {
        const auto i = static_cast<std::size_t>(b);
        pw1.push_back(w1[i].data());
        pb1.push_back(biases ? b1[i].data() : nullptr);
        pw2.push_back(w2[i].data());
        pb2.push_back(biases ? b2[i].data() : nullptr);
      }
      std::vector<float> got(static_cast<std::size_t>(size), -7.0f);
      cpu().conv2d_residual_chain(DType::Float32, blocks, s1.data(), s2.data(), x.data(), pw1.data(), pb1.data(),
                                  pw2.data(), pb2.data(), got.data());

      // Block by block: the channels-last kernel's calls where the chain fuses the block, else
      // the conv2d calls.
      ConvEpilogue relu;
      relu.activate = true;
      std::vector<float> in = x, want(in.size());
      for (std::int64_t b = 0; b < blocks; ++b) {
        const auto i = static_cast<std::size_t>(b);
        ConvEpilogue add_relu = relu;
        add_relu.residual = in.data();
        std::vector<float> mid(static_cast<std::size_t>(ch.n * ch.mids[i] * ch.h * ch.w));
        const auto* pb1f = static_cast<const float*>(pb1[i]);
        const auto* pb2f = static_cast<const float*>(pb2[i]);
        if (cpu::residual_pair_fuses(s1[i], s2[i])) {
          cpu::conv2d_forward_winograd_channels_last(s1[i], in.data(), w1[i].data(), pb1f, mid.data(), relu);
          cpu::conv2d_forward_winograd_channels_last(s2[i], mid.data(), w2[i].data(), pb2f, want.data(), add_relu);
        } else {
          cpu().conv2d(DType::Float32, s1[i], in.data(), w1[i].data(), pb1[i], relu, mid.data());
          cpu().conv2d(DType::Float32, s2[i], mid.data(), w2[i].data(), pb2[i], add_relu, want.data());
        }
        in = want;
      }
      std::size_t differ = 0;
      for (std::size_t i = 0; i < got.size(); ++i) differ += std::memcmp(&got[i], &want[i], sizeof(float)) != 0;
      EXPECT_EQ(differ, 0u) << what << ": outputs differing from the convolutions block by block";

      // The reference loops, in double.
      std::vector<double> ref = to_doubles(x);
      for (std::int64_t b = 0; b < blocks; ++b) {
        const auto i = static_cast<std::size_t>(b);
        const auto dw1 = to_doubles(w1[i]), dw2 = to_doubles(w2[i]), db1 = to_doubles(b1[i]), db2 = to_doubles(b2[i]);
        std::vector<double> h(static_cast<std::size_t>(ch.n * ch.mids[i] * ch.h * ch.w)), y(ref.size());
        reference::conv2d(s1[i], ref.data(), dw1.data(), biases ? db1.data() : nullptr, h.data());
        for (double& v : h) v = std::max(v, 0.0);
        reference::conv2d(s2[i], h.data(), dw2.data(), biases ? db2.data() : nullptr, y.data());
        for (std::size_t j = 0; j < y.size(); ++j) ref[j] = std::max(y[j] + ref[j], 0.0);
      }
      double worst = 0;
      for (std::size_t i = 0; i < ref.size(); ++i)
        worst = std::max(worst, std::fabs(got[i] - ref[i]) / (1 + std::fabs(ref[i])));
      EXPECT_LT(worst, 1e-4) << what << ": against the reference loops";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, ResidualChainThreads, ::testing::Values(1, 2));

}  // namespace
}  // namespace shrink::kernels
