// The Winograd F(4x4, 3x3) forward convolution (kernels/cpu/conv_winograd.h) against the
// reference loops, on shapes that exercise its tiling: output sizes not multiples of 4 (partial
// tiles), tile rows of 1, 2, 7 and 18 tiles (vectors of 8 tiles that cross tile rows and images
// and read by gathers; ones that sit in a row and load contiguously), padding 0, 1 and 2
// (asymmetric h/w), more than kKC = 256 input channels (two k blocks), output channels that
// leave a partial 6-row panel, batches whose tiles fill many chunks (threads take whole chunks)
// and few (threads share each chunk's steps); and the same bits on one thread and two.
//
// Tolerance: the transforms scale inputs by up to 5 and outputs by up to 8 and the weights by
// 1/24 .. 1, so each output carries a rounding error of a few ulps times the sum of its terms'
// magnitudes amplified by the transforms' norms (~10^2), not the direct sum's few ulps.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/conv_algorithm.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/conv_winograd_channels_last.h"
#include "kernels/reference/conv.h"
#include "tests/conv_shapes.h"
#include "tests/cpu_kernel_test.h"

namespace shrink::kernels {
namespace {

constexpr auto conv = testing::conv_shape;

using ForwardKernel = void (*)(const Conv2dShape&, const float*, const float*, const float*, float*,
                               const ConvEpilogue&);

// `forward` against the reference loops on every shape, with and without a bias.
void expect_forward_matches_reference(const char* name, ForwardKernel forward, bool (*applies)(const Conv2dShape&),
                                      const std::vector<Conv2dShape>& shapes) {
  for (const Conv2dShape& s : shapes) {
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE("n=" + std::to_string(s.n) + " c_in=" + std::to_string(s.c_in) + " h=" +
                   std::to_string(s.h) + " w=" + std::to_string(s.w) + " c_out=" + std::to_string(s.c_out) +
                   " pad=" + std::to_string(s.pad_h) + "x" + std::to_string(s.pad_w));
      ASSERT_TRUE(applies(s));
      const auto x = testing::random_vec<float>(s.n * s.c_in * s.h * s.w, -1, 1, 1);
      const auto w = testing::random_vec<float>(s.c_out * s.c_in * 9, -1, 1, 2);
      const auto b = testing::random_vec<float>(s.c_out, -1, 1, 3);
      std::vector<float> got(static_cast<std::size_t>(s.n * s.c_out * s.out_h() * s.out_w()), -7.0f);
      forward(s, x.data(), w.data(), with_bias ? b.data() : nullptr, got.data(), {});
      std::vector<double> want(got.size());
      const auto bd = testing::to_doubles(b);
      reference::conv2d(s, testing::to_doubles(x).data(), testing::to_doubles(w).data(),
                        with_bias ? bd.data() : nullptr, want.data());
      // Terms in [-1, 1]; 9 c_in of them per output.
      const double tol = 100 * 6e-8 * static_cast<double>(9 * s.c_in + 4);
      EXPECT_TRUE(testing::all_close(name, got, want, tol, tol));
    }
  }
}

TEST(ConvWinograd, MatchesTheReferenceOnTilingEdgeCases) {
  const std::vector<Conv2dShape> shapes = {
      conv(2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1),     // 7x9 output: partial tiles both ways
      conv(1, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),  // ResNet-20 stage 1, one image
      conv(3, 5, 70, 38, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // 18 and 10 tiles a row: 3 vectors, 2 panels
      conv(2, 4, 11, 13, 13, 3, 3, 1, 1, 0, 2, 1, 1, 1),   // pad 0 x 2, 13 channels out
      conv(2, 300, 6, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // 300 channels in: two k blocks
      conv(1, 2, 3, 3, 1, 3, 3, 1, 1, 2, 2, 1, 1, 1),      // pad 2, tiny image
      conv(5, 9, 8, 8, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1),     // 2 tiles a row: vectors span rows and images
      conv(17, 12, 4, 4, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // one tile an image, 17 images
      conv(6, 16, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),  // 7 tiles a row, many chunks
      conv(3, 64, 16, 16, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1),  // 48 tiles: one chunk, shared steps
      conv(2, 33, 9, 11, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // 17 out: three 6-row panels, the last of 5
      conv(4, 8, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // a pruned ResNet-20's 8-channel stage
      conv(2, 3, 9, 52, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1),     // 14 positions a phase row: two vector blocks, the last runs over
      conv(2, 3, 6, 90, 5, 3, 3, 1, 1, 2, 1, 1, 1, 1),     // 24 positions: three whole blocks, pad 2 x 1
      conv(1, 2, 5, 8, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1),      // 3 positions a row, unpadded: scalar stores only
  };
  expect_forward_matches_reference("conv2d_winograd", cpu::conv2d_forward_winograd, cpu::winograd_applies, shapes);
}

// dw = sum over n out_h out_w products of terms in [-1, 1]; the same shapes.
TEST(ConvWinograd, WeightGradientMatchesTheReference) {
  const Conv2dShape shapes[] = {
      conv(2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1),     conv(1, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),
      conv(3, 5, 70, 38, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1),   conv(2, 4, 11, 13, 13, 3, 3, 1, 1, 0, 2, 1, 1, 1),
      conv(2, 300, 6, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),   conv(1, 2, 3, 3, 1, 3, 3, 1, 1, 2, 2, 1, 1, 1),
      conv(5, 9, 8, 8, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1),    conv(17, 12, 4, 4, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),
      conv(6, 16, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1), conv(3, 8, 16, 16, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1),
  };
  for (const Conv2dShape& s : shapes) {
    SCOPED_TRACE("n=" + std::to_string(s.n) + " c_in=" + std::to_string(s.c_in) + " h=" + std::to_string(s.h) +
                 " w=" + std::to_string(s.w) + " c_out=" + std::to_string(s.c_out));
    const auto x = testing::random_vec<float>(s.n * s.c_in * s.h * s.w, -1, 1, 7);
    const auto dy = testing::random_vec<float>(s.n * s.c_out * s.out_h() * s.out_w(), -1, 1, 8);
    std::vector<float> got(static_cast<std::size_t>(s.c_out * s.c_in * 9), -7.0f);
    cpu::conv2d_backward_weight_winograd(s, x.data(), dy.data(), got.data());
    std::vector<double> want(got.size());
    reference::conv2d_backward_weight(s, testing::to_doubles(x).data(), testing::to_doubles(dy).data(), want.data());
    const double tol = 100 * 6e-8 * static_cast<double>(s.n * s.out_h() * s.out_w() + 4);
    EXPECT_TRUE(testing::all_close("conv2d_backward_weight_winograd", got, want, tol, tol));
  }
}

TEST(ConvWinograd, GivesTheSameBitsOnOneThreadAndTwo) {
  const int before = omp_get_max_threads();
  for (const Conv2dShape& s : {conv(6, 16, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),
                               conv(3, 64, 16, 16, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1),
                               conv(5, 9, 8, 8, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1)}) {
    const auto x = testing::random_vec<float>(s.n * s.c_in * s.h * s.w, -1, 1, 4);
    const auto w = testing::random_vec<float>(s.c_out * s.c_in * 9, -1, 1, 5);
    const auto b = testing::random_vec<float>(s.c_out, -1, 1, 6);
    const auto dy = testing::random_vec<float>(s.n * s.c_out * s.out_h() * s.out_w(), -1, 1, 7);
    std::vector<float> y[2], dw[2];
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      y[threads - 1].resize(static_cast<std::size_t>(s.n * s.c_out * s.out_h() * s.out_w()));
      dw[threads - 1].resize(static_cast<std::size_t>(s.c_out * s.c_in * 9));
      cpu::conv2d_forward_winograd(s, x.data(), w.data(), b.data(), y[threads - 1].data());
      cpu::conv2d_backward_weight_winograd(s, x.data(), dy.data(), dw[threads - 1].data());
    }
    omp_set_num_threads(before);
    EXPECT_TRUE(testing::all_same("conv2d_winograd", y[1], y[0])) << "c_in " << s.c_in << " h " << s.h;
    EXPECT_TRUE(testing::all_same("conv2d_backward_weight_winograd", dw[1], dw[0])) << "c_in " << s.c_in;
  }
}

// The channels-last Winograd (conv_winograd_channels_last.h: channels as lanes) on its edge cases:
// channel counts that fill no vector, one and two vectors each way; outputs not multiples of 4
// or 8 (partial tiles, masked stores); tile rows shorter and longer than a group of 8 tiles (a
// group that ends a band short); padding 0, 1, 2; one image (threads split its tile rows) and
// many.
TEST(ConvWinogradChannelsLast, MatchesTheReference) {
  const std::vector<Conv2dShape> shapes = {
      conv(4, 8, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),     // a pruned ResNet-20's 8-channel stage
      conv(3, 16, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // 16 -> 8: two vectors in
      conv(2, 8, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // 8 -> 16: two vectors out
      conv(2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1),       // 7x9 output: partial tiles, one group a band
      conv(1, 13, 21, 35, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // one image: bands of tile rows; 9 tiles a row
      conv(2, 1, 11, 13, 16, 3, 3, 1, 1, 0, 2, 1, 1, 1),    // one channel in, pad 0 x 2
      conv(3, 9, 3, 3, 1, 3, 3, 1, 1, 2, 2, 1, 1, 1),       // pad 2, tiny image, one channel out
      conv(5, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1),     // 4 tiles an image: short groups
      conv(2, 5, 6, 90, 7, 3, 3, 1, 1, 2, 1, 1, 1, 1),      // 23 tiles a row, pad 2 x 1
      conv(1, 2, 5, 8, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1),       // 3x6 output, unpadded
      conv(2, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1),     // 64 each way: strides past the 2 x 2 table
      conv(3, 40, 9, 11, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // 5 vectors in, 3 out
      conv(2, 33, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // 33 in: a ninth of a vector
      conv(2, 32, 12, 12, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // a stride of 32 floats in, 24 out
      conv(2, 20, 8, 8, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1),     // 24 in, 32 out
  };
  expect_forward_matches_reference("conv2d_winograd_channels_last", cpu::conv2d_forward_winograd_channels_last,
                                   cpu::winograd_channels_last_applies, shapes);
}

TEST(ConvWinogradChannelsLast, GivesTheSameBitsOnOneThreadAndTwo) {
  const int before = omp_get_max_threads();
  for (const Conv2dShape& s : {conv(6, 8, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),     // whole images
                               conv(1, 13, 21, 35, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // bands of one image
                               conv(3, 40, 9, 11, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1)}) {  // bands of 1 and 2 tile rows
    const auto x = testing::random_vec<float>(s.n * s.c_in * s.h * s.w, -1, 1, 14);
    const auto w = testing::random_vec<float>(s.c_out * s.c_in * 9, -1, 1, 15);
    const auto b = testing::random_vec<float>(s.c_out, -1, 1, 16);
    std::vector<float> y[2];
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      y[threads - 1].resize(static_cast<std::size_t>(s.n * s.c_out * s.out_h() * s.out_w()));
      cpu::conv2d_forward_winograd_channels_last(s, x.data(), w.data(), b.data(), y[threads - 1].data());
    }
    omp_set_num_threads(before);
    EXPECT_TRUE(testing::all_same("conv2d_winograd_channels_last", y[1], y[0])) << "c_in " << s.c_in << " n " << s.n;
  }
}

TEST(ConvWinograd, IsPreferredWhereItSavesProducts) {
  EXPECT_TRUE(cpu::winograd_preferred(conv(64, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(cpu::winograd_preferred(conv(16, 256, 4, 4, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(cpu::winograd_preferred(conv(16, 512, 2, 2, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1)));  // 4 of 16 outputs used
  EXPECT_FALSE(cpu::winograd_preferred(conv(64, 3, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));   // 3 channels in
  EXPECT_TRUE(cpu::winograd_preferred(conv(64, 8, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));    // 32x32: 64+ pairs
  EXPECT_FALSE(cpu::winograd_preferred(conv(64, 12, 32, 32, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1)));   // 48 pairs
  EXPECT_TRUE(cpu::winograd_preferred(conv(64, 8, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1)));    // 16x16: 256 pairs
  EXPECT_FALSE(cpu::winograd_preferred(conv(64, 24, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1)));   // 192 pairs
  EXPECT_FALSE(cpu::winograd_preferred(conv(64, 32, 16, 16, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1)));   // 4 channels out
  EXPECT_FALSE(cpu::winograd_preferred(conv(64, 16, 32, 32, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1)));  // stride 2
  // Too few tiles in the call to pay for the filters' transform: 4 (one 8x8 image), 7 (4x4 maps).
  EXPECT_FALSE(cpu::winograd_preferred(conv(1, 256, 8, 8, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(cpu::winograd_preferred(conv(2, 256, 8, 8, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(cpu::winograd_preferred(conv(7, 512, 4, 4, 512, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(cpu::winograd_preferred(conv(1, 64, 16, 16, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1)));  // 16 tiles
  // There the channels-last kernel, its filters kept across calls, beats the direct one.
  EXPECT_TRUE(cpu::winograd_channels_last_preferred(conv(1, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(cpu::winograd_channels_last_preferred(conv(7, 32, 4, 4, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(cpu::winograd_channels_last_preferred(conv(1, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1)));  // U 4x the weights
  EXPECT_FALSE(cpu::winograd_channels_last_preferred(conv(1, 2, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));   // 2 channels in
  EXPECT_FALSE(cpu::winograd_channels_last_preferred(conv(1, 16, 2, 2, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));  // 4 of 16 outputs used
  EXPECT_FALSE(cpu::winograd_applies(conv(4, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 2)));     // groups 2
  EXPECT_TRUE(cpu::winograd_weight_grad_preferred(conv(64, 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(cpu::winograd_weight_grad_preferred(conv(64, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(cpu::winograd_applies(conv(4, 16, 32, 32, 16, 3, 3, 1, 1, 2, 2, 2, 2, 1)));     // dilation 2
}

TEST(ConvWinogradChannelsLast, IsPreferredWhereItBeatsTheOtherKernels) {
  EXPECT_TRUE(cpu::winograd_channels_last_preferred(conv(64, 8, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(cpu::winograd_channels_last_preferred(conv(64, 16, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(cpu::winograd_channels_last_preferred(conv(64, 8, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));  // batched
  EXPECT_FALSE(cpu::winograd_channels_last_preferred(conv(64, 8, 32, 32, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1)));   // direct
  EXPECT_TRUE(cpu::winograd_channels_last_preferred(conv(64, 16, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(cpu::winograd_channels_last_preferred(conv(64, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(cpu::winograd_channels_last_preferred(conv(64, 4, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(cpu::winograd_channels_last_preferred(conv(64, 8, 16, 16, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(cpu::winograd_channels_last_preferred(conv(64, 2, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));  // 2 channels in
  EXPECT_TRUE(cpu::winograd_channels_last_preferred(conv(64, 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_TRUE(cpu::winograd_channels_last_preferred(conv(64, 64, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));
  EXPECT_FALSE(cpu::winograd_channels_last_preferred(conv(64, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1)));   // batched
  EXPECT_FALSE(cpu::winograd_channels_last_preferred(conv(64, 32, 32, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1))); // batched
  EXPECT_FALSE(cpu::winograd_channels_last_applies(conv(64, 8, 16, 16, 72, 3, 3, 1, 1, 1, 1, 1, 1, 1)));    // 72 out
  EXPECT_FALSE(cpu::winograd_channels_last_preferred(conv(64, 16, 2, 2, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)));   // 4 of 16 outputs used
  EXPECT_FALSE(cpu::winograd_channels_last_preferred(conv(64, 8, 16, 16, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1)));   // stride 2
}

// conv2d's choice, which bench_conv's labels read: the preferred Winograd first, depthwise its
// own kernels, and backward-input at stride 1 the forward kernel of the swapped shape.
TEST(ConvAlgorithm, FollowsThePreferencesPerPass) {
  using cpu::ConvAlgorithm;
  EXPECT_EQ(cpu::forward_algorithm(conv(64, 8, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1)), ConvAlgorithm::WinogradChannelsLast);
  EXPECT_EQ(cpu::forward_algorithm(conv(64, 8, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)), ConvAlgorithm::Winograd);
  EXPECT_EQ(cpu::forward_algorithm(conv(64, 8, 32, 32, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1)), ConvAlgorithm::Direct);
  EXPECT_EQ(cpu::forward_algorithm(conv(64, 8, 16, 16, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1)), ConvAlgorithm::Direct);
  EXPECT_EQ(cpu::forward_algorithm(conv(64, 16, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16)), ConvAlgorithm::Depthwise3x3);
  EXPECT_EQ(cpu::forward_algorithm(conv(64, 16, 16, 16, 16, 3, 3, 1, 1, 2, 2, 1, 1, 16)), ConvAlgorithm::Depthwise);
  EXPECT_EQ(cpu::forward_algorithm(conv(64, 16, 16, 16, 16, 5, 5, 1, 1, 2, 2, 1, 1, 16)), ConvAlgorithm::Depthwise);
  EXPECT_EQ(cpu::forward_algorithm(conv(64, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16)), ConvAlgorithm::DepthwiseBlocked);
  EXPECT_EQ(cpu::forward_algorithm(conv(64, 16, 16, 16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 16)), ConvAlgorithm::DepthwiseBlocked);
  // Depthwise backward-input at stride 1 is the flipped forward, on that shape's kernel; else
  // 8-channel blocks, as every depthwise backward-weight.
  EXPECT_EQ(cpu::backward_input_algorithm(conv(64, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16)),
            ConvAlgorithm::DepthwiseBlocked);
  EXPECT_EQ(cpu::backward_input_algorithm(conv(64, 16, 16, 16, 16, 5, 5, 1, 1, 2, 2, 1, 1, 16)),
            ConvAlgorithm::Depthwise);
  EXPECT_EQ(cpu::backward_input_algorithm(conv(64, 16, 32, 32, 16, 3, 3, 2, 2, 1, 1, 1, 1, 16)),
            ConvAlgorithm::DepthwiseBlocked);
  // 16 -> 8 at 32x32: its backward-input is the forward 8 -> 16 convolution (batched Winograd);
  // at stride 2 it is no forward convolution.
  const Conv2dShape narrowing = conv(64, 16, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  EXPECT_EQ(cpu::forward_algorithm(narrowing), ConvAlgorithm::WinogradChannelsLast);
  EXPECT_EQ(cpu::backward_input_algorithm(narrowing), ConvAlgorithm::Winograd);
  EXPECT_EQ(cpu::backward_input_algorithm(conv(64, 16, 32, 32, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1)), ConvAlgorithm::Im2colGemm);
  EXPECT_EQ(cpu::backward_input_algorithm(conv(64, 16, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16)),
            ConvAlgorithm::Depthwise3x3);
  EXPECT_EQ(cpu::backward_weight_algorithm(conv(64, 16, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16)),
            ConvAlgorithm::DepthwiseBlocked);
  EXPECT_EQ(cpu::backward_weight_algorithm(conv(64, 8, 16, 16, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1)), ConvAlgorithm::Direct);
  // Backward-weight with pixels as the lanes (conv_weight_pixels.h): 8 output channels on 32-wide
  // rows, a one-channel stem, a 1x1 layer of 8 outputs; not 16 outputs (whole 16-channel panels)
  // nor 8x8 maps.
  EXPECT_EQ(cpu::backward_weight_algorithm(narrowing), ConvAlgorithm::DirectPixelLanes);
  EXPECT_EQ(cpu::backward_weight_algorithm(conv(64, 1, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)),
            ConvAlgorithm::DirectPixelLanes);
  EXPECT_EQ(cpu::backward_weight_algorithm(conv(64, 32, 8, 8, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1)),
            ConvAlgorithm::DirectPixelLanes);
  EXPECT_EQ(cpu::backward_weight_algorithm(conv(64, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)), ConvAlgorithm::Direct);
  EXPECT_EQ(cpu::backward_weight_algorithm(conv(64, 8, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1)), ConvAlgorithm::Direct);
  EXPECT_STREQ(cpu::algorithm_name(ConvAlgorithm::DirectPixelLanes), "direct_pixel_lanes");
  EXPECT_STREQ(cpu::algorithm_name(ConvAlgorithm::WinogradChannelsLast), "winograd_channels_last");
}

}  // namespace
}  // namespace shrink::kernels
