// conv2d's epilogue (kernels/kernel_types.h ConvEpilogue: y = act(conv + bias + residual)) on
// every CPU kernel: the channels-last and batched Winograd, the direct kernel (and its strided
// 1x1 path), the depthwise row loops (3x3, 5x5, any size) and 8-channel blocks, and float64's im2col + GEMM. Each result
// must be bit for bit the plain convolution followed by the separate add and activation
// (formulas/unary.h), so fusing them in a model changes no output: over residuals with NaNs,
// exact cancellations to zero and values either side of ReLU6's 0 and 6; with and without a
// bias; on one thread and two (whole images per thread, and bands of one image).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "kernels/cpu/conv_algorithm.h"
#include "kernels/cpu/conv_depthwise_blocked.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/conv_winograd_channels_last.h"
#include "kernels/formulas/unary.h"
#include "tests/conv_shapes.h"
#include "tests/cpu_kernel_test.h"
#include "tests/omp_threads_test.h"

namespace shrink::kernels {
namespace {

constexpr auto conv = testing::conv_shape;

const std::vector<Conv2dShape>& shapes() {
  static const std::vector<Conv2dShape> all = {
      conv(3, 8, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // a pruned ResNet-20 stage: channels-last
      conv(1, 8, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // one image: bands of tile rows per thread
      conv(2, 8, 30, 29, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1),    // rows of 29: masked tails in every store
      conv(2, 16, 34, 31, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1),  // batched Winograd (partial tiles)
      conv(4, 16, 20, 18, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1),  // above the OpenMP grain
      conv(3, 5, 7, 9, 4, 3, 2, 2, 1, 1, 0, 2, 1, 1),      // direct: stride, dilation, odd kernel
      conv(3, 6, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2),      // groups 2
      conv(3, 6, 9, 7, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1),      // strided 1x1: the subsampled path
      conv(2, 5, 6, 7, 9, 1, 1, 1, 1, 0, 0, 1, 1, 1),      // 1x1
      conv(3, 8, 4, 4, 24, 1, 1, 1, 1, 0, 0, 1, 1, 1),     // 1x1 run as one row of 16 pixels
      conv(2, 40, 9, 11, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1),   // direct: k = 360 in two blocks, the last finishes
      conv(2, 6, 9, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6),      // depthwise 3x3
      conv(2, 3, 9, 8, 3, 5, 5, 2, 1, 2, 2, 1, 1, 3),      // depthwise 5x5, stride 2 x 1
      conv(2, 4, 9, 36, 4, 3, 3, 2, 2, 1, 1, 1, 1, 4),     // depthwise 3x3, stride 2: column phases
      conv(3, 5, 7, 19, 5, 3, 2, 2, 1, 1, 0, 2, 1, 5),     // depthwise 3x2: the generic loops
      conv(2, 8, 9, 17, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8),     // depthwise 3x3, rows of 17: rolling row sums
      conv(2, 3, 6, 26, 3, 3, 3, 1, 1, 0, 1, 1, 1, 3),     // the same unpadded vertically, rows of 26
      conv(2, 3, 9, 13, 3, 3, 3, 1, 1, 2, 2, 1, 1, 3),     // depthwise 3x3, padding 2: the row loops
      conv(2, 3, 9, 18, 3, 5, 5, 2, 1, 2, 2, 1, 1, 3),     // depthwise 5x5, stride 2 x 1, rows of 18
      conv(3, 5, 7, 9, 5, 3, 2, 2, 1, 1, 0, 2, 1, 5),      // depthwise 3x2, rows of 8: 8 channels per vector
      conv(2, 12, 4, 4, 12, 3, 3, 1, 1, 1, 1, 1, 1, 12),   // depthwise 4x4: blocks of 8 and 4 channels
      conv(3, 16, 8, 8, 16, 3, 3, 2, 2, 1, 1, 1, 1, 16),   // depthwise 8x8 -> 4x4, stride 2
      conv(2, 8, 3, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8),      // depthwise 3x5: 15 pixels, a partial group
      conv(8, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 64),   // depthwise blocks above the OpenMP grain
  };
  return all;
}

std::string describe(const Conv2dShape& s) {
  return "n=" + std::to_string(s.n) + " c_in=" + std::to_string(s.c_in) + " " + std::to_string(s.h) + "x" +
         std::to_string(s.w) + " c_out=" + std::to_string(s.c_out) + " k=" + std::to_string(s.kh) + "x" +
         std::to_string(s.kw) + " groups=" + std::to_string(s.groups);
}

// The residual: values around the outputs' scale with both of ReLU6's edges crossed, a NaN,
// and at a few places exactly -plain (the sum is +0).
template <class T>
std::vector<T> residual_for(const std::vector<T>& plain) {
  std::vector<T> r = random_vec<T>(static_cast<std::int64_t>(plain.size()), -8, 8, 11);
  for (std::size_t i = 0; i < r.size(); i += 97) r[i] = -plain[i];
  r[r.size() / 2] = std::numeric_limits<T>::quiet_NaN();
  return r;
}

// The separate ops: y + r (rounded), then the activation's formula.
template <class T>
std::vector<T> separate(std::vector<T> y, const T* r, const ConvEpilogue& post) {
  for (std::size_t i = 0; i < y.size(); ++i) {
    T v = r ? y[i] + r[i] : y[i];
    if (post.activate)
      v = post.activation == UnaryOp::Relu ? formulas::unary_value<UnaryOp::Relu>(v, T(0))
                                            : formulas::unary_value<UnaryOp::Relu6>(v, T(0));
    y[i] = v;
  }
  return y;
}

// Equal bits (NaN where NaN): the epilogue must not change a single rounding.
template <class T>
void expect_same_bits(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  std::size_t differ = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0 && !(std::isnan(got[i]) && std::isnan(want[i])))
      if (differ++ == 0) first = i;
  EXPECT_EQ(differ, 0u) << what << ": first at " << first << " got " << got[first] << " want " << want[first];
}

// `forward` with every epilogue against itself without one plus the separate ops.
template <class T>
void expect_epilogue_matches_separate_ops(const Conv2dShape& s, const std::string& kernel,
                                          const std::function<void(const T*, const T*, const T*, T*,
                                                                   const ConvEpilogue&)>& forward) {
  const auto x = random_vec<T>(s.n * s.c_in * s.h * s.w, -1, 1, 1);
  const auto w = random_vec<T>(s.c_out * (s.c_in / s.groups) * s.kh * s.kw, -1, 1, 2);
  const auto b = random_vec<T>(s.c_out, -1, 1, 3);
  const std::size_t outputs = static_cast<std::size_t>(s.n * s.c_out * s.out_h() * s.out_w());
  for (bool with_bias : {true, false}) {
    std::vector<T> plain(outputs, T(-7));
    forward(x.data(), w.data(), with_bias ? b.data() : nullptr, plain.data(), {});
    const std::vector<T> r = residual_for(plain);
    for (bool add : {false, true})
      for (int act = 0; act < 3; ++act) {
        ConvEpilogue post;
        post.residual = add ? r.data() : nullptr;
        post.activate = act > 0;
        post.activation = act == 2 ? UnaryOp::Relu6 : UnaryOp::Relu;
        std::vector<T> got(outputs, T(-7));
        forward(x.data(), w.data(), with_bias ? b.data() : nullptr, got.data(), post);
        expect_same_bits(got, separate(plain, add ? r.data() : nullptr, post),
                         kernel + " " + describe(s) + (with_bias ? " bias" : "") + (add ? " +residual" : "") +
                             (act == 1 ? " relu" : act == 2 ? " relu6" : ""));
      }
  }
}

using ConvEpilogueThreads = testing::OmpThreadsTest;

TEST_P(ConvEpilogueThreads, EveryFloatKernelMatchesTheSeparateOps) {
  std::set<cpu::ConvAlgorithm> chosen;
  for (const Conv2dShape& s : shapes()) {
    chosen.insert(cpu::forward_algorithm(s));
    // The kernel conv2d picks for the shape, through the backend.
    expect_epilogue_matches_separate_ops<float>(
        s, std::string("conv2d (") + cpu::algorithm_name(cpu::forward_algorithm(s)) + ")",
        [&](const float* x, const float* w, const float* b, float* y, const ConvEpilogue& post) {
          cpu().conv2d(DType::Float32, s, x, w, b, post, y);
        });
    if (cpu::is_depthwise(s)) continue;
    // And every other kernel that can run it.
    expect_epilogue_matches_separate_ops<float>(s, "direct", [&](auto x, auto w, auto b, auto y, const auto& post) {
      cpu::conv2d_forward_direct(s, x, w, b, y, post);
    });
    if (cpu::winograd_applies(s))
      expect_epilogue_matches_separate_ops<float>(s, "winograd", [&](auto x, auto w, auto b, auto y, const auto& post) {
        cpu::conv2d_forward_winograd(s, x, w, b, y, post);
      });
    if (cpu::winograd_channels_last_applies(s))
      expect_epilogue_matches_separate_ops<float>(
          s, "winograd_channels_last", [&](auto x, auto w, auto b, auto y, const auto& post) {
            cpu::conv2d_forward_winograd_channels_last(s, x, w, b, y, post);
          });
  }
  // The table reaches every float forward algorithm through conv2d itself.
  for (auto a : {cpu::ConvAlgorithm::Depthwise, cpu::ConvAlgorithm::Depthwise3x3, cpu::ConvAlgorithm::DepthwiseBlocked,
                 cpu::ConvAlgorithm::WinogradChannelsLast,
                 cpu::ConvAlgorithm::Winograd, cpu::ConvAlgorithm::Direct})
    EXPECT_TRUE(chosen.count(a)) << cpu::algorithm_name(a) << " is chosen for no shape of the table";
}

// The 8-channel blocks sum each output in the row loops' order (conv_depthwise_blocked.h), and
// so do the rolling row sums (conv_depthwise_3x3.h). On shapes that conv2d gives the row loops
// or the rolling sums (output rows wider than 8: 3x3, 5x5 and the generic 3x2 loop) the blocks
// must agree with them to within rounding, epilogue included. Not to the bit: the blocks
// call FMA explicitly, while the row loops' `acc += w * x` is an FMA only where the compiler
// contracts it (the Release build does; the -O1 sanitizer build does not).
TEST_P(ConvEpilogueThreads, DepthwiseBlocksAgreeWithTheRowLoops) {
  for (const Conv2dShape& s : shapes()) {
    const cpu::ConvAlgorithm a = cpu::forward_algorithm(s);
    if (a != cpu::ConvAlgorithm::Depthwise && a != cpu::ConvAlgorithm::Depthwise3x3) continue;
    const auto x = random_vec<float>(s.n * s.c_in * s.h * s.w, -1, 1, 1);
    const auto w = random_vec<float>(s.c_out * s.kh * s.kw, -1, 1, 2);
    const auto b = random_vec<float>(s.c_out, -1, 1, 3);
    const std::int64_t y_size = s.n * s.c_out * s.out_h() * s.out_w();
    const auto r = random_vec<float>(y_size, -4, 4, 4);
    ConvEpilogue post;
    post.residual = r.data();
    post.activate = true;
    post.activation = UnaryOp::Relu6;
    std::vector<float> rows(static_cast<std::size_t>(y_size)), blocks(rows.size());
    cpu().conv2d(DType::Float32, s, x.data(), w.data(), b.data(), post, rows.data());
    cpu::conv2d_forward_depthwise_blocked(s, x.data(), w.data(), b.data(), post, blocks.data());
    for (std::size_t i = 0; i < rows.size(); ++i)
      ASSERT_NEAR(blocks[i], rows[i], 1e-6 * (1 + std::fabs(rows[i]))) << "blocks vs row loops at " << i << ", "
                                                                        << describe(s);
  }
}

TEST_P(ConvEpilogueThreads, Float64MatchesTheSeparateOps) {
  for (const Conv2dShape& s : shapes())
    expect_epilogue_matches_separate_ops<double>(
        s, "conv2d float64", [&](const double* x, const double* w, const double* b, double* y,
                                 const ConvEpilogue& post) { cpu().conv2d(DType::Float64, s, x, w, b, post, y); });
}

INSTANTIATE_TEST_SUITE_P(Threads, ConvEpilogueThreads, ::testing::Values(1, 2));

}  // namespace
}  // namespace shrink::kernels
