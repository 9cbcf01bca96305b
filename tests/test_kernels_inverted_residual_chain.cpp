// inverted_residual_chain (kernels/kernel_list.h): MobileNetV2 blocks in one call, block b
// mapping x_b to conv1x1(relu6(dw3x3(relu6(conv1x1(x_b) + be)) + bd)) + bp (+ x_b). Runs of
// blocks that kernels/cpu/inverted_residual_channels_last.h inverted_residual_fuses go through
// the channels-last kernel, the maps between them kept channels-last; the other blocks are their
// conv2d calls. Either way the result must be the conv2d calls' within float rounding (the fused
// kernel may order a sum differently), and the reference loops' in double. Chains of one to
// three blocks with and without an expand, stride 1 and 2 (odd maps: 7x9 -> 4x5), shortcuts,
// odd widths (vector tails), hidden widths past one 24-channel tile (72, 120), pixel counts off a
// multiple of 8 and of the 4-pixel tile, a block that is not depthwise (run apart) inside a fused
// chain, one image (apart on two threads), with and without biases, on one thread and two.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/inverted_residual_channels_last.h"
#include "kernels/reference/conv.h"
#include "tests/conv_shapes.h"
#include "tests/cpu_kernel_test.h"
#include "tests/omp_threads_test.h"

namespace shrink::kernels {
namespace {

struct Block {
  std::int64_t hidden, c_out, stride;
  bool expand, residual;
  bool fuses_on_two;       // inverted_residual_fuses with 2 threads
  bool depthwise = true;   // false: a dense 3x3 in its place (never fused)
};

struct Chain {
  std::int64_t n, c, h, w;
  std::vector<Block> blocks;
};

const Chain kChains[] = {
    // A pruned MobileNetV2's first blocks: no expand, then 8 -> 24 -> 8 twice, then down to 16x16.
    {4, 8, 32, 32, {{8, 8, 1, false, true, true}, {24, 8, 1, true, true, true}, {24, 16, 2, true, false, true}}},
    // Odd widths and maps: stride 2 on 7x9, 4x5 = 20 pixels (not a multiple of 8).
    {5, 13, 7, 9, {{20, 13, 1, true, true, true}, {40, 11, 2, true, false, true}}},
    // Rows of 17 and then 9 outputs: runs of 8 in a row and the pixels past them, at stride 1 and 2.
    {4, 8, 5, 17, {{16, 8, 1, true, true, true}, {24, 16, 2, true, false, true}}},
    // Hidden widths of several 24-channel tiles (72 = 3 tiles, 120 = 5), a 4x4 map.
    {4, 16, 8, 8, {{72, 16, 1, true, true, true}, {72, 24, 2, true, false, true}, {120, 24, 1, true, true, true}}},
    // A dense 3x3 in the middle block: run apart between two fused runs.
    {4, 8, 16, 16, {{24, 8, 1, true, true, true}, {16, 8, 1, true, true, false, false}, {24, 8, 1, true, true, true}}},
    // One image: every block apart on two threads.
    {1, 8, 16, 16, {{24, 8, 1, true, true, false}, {24, 16, 2, true, false, false}}},
};

Conv2dShape pointwise(std::int64_t n, std::int64_t c_in, std::int64_t h, std::int64_t w, std::int64_t c_out) {
  return testing::conv_shape(n, c_in, h, w, c_out, 1, 1, 1, 1, 0, 0, 1, 1, 1);
}

std::string describe(const Chain& ch) {
  std::string s = "n=" + std::to_string(ch.n) + " " + std::to_string(ch.h) + "x" + std::to_string(ch.w) + " " +
                  std::to_string(ch.c);
  for (const Block& b : ch.blocks)
    s += " -> [" + std::to_string(b.hidden) + (b.depthwise ? " dw" : " dense") + " s" + std::to_string(b.stride) +
         (b.residual ? " +x" : "") + "] " + std::to_string(b.c_out);
  return s;
}

// A block's shapes and weights; the weights' sizes follow the shapes.
struct Built {
  InvertedResidualBlock k;
  std::vector<float> we, be, wd, bd, wp, bp;
};

std::vector<Built> build(const Chain& ch) {
  std::vector<Built> out;
  std::int64_t c = ch.c, h = ch.h, w = ch.w;
  std::uint64_t seed = 10;
  for (const Block& b : ch.blocks) {
    Built x;
    x.k.has_expand = b.expand;
    x.k.residual = b.residual;
    if (b.expand) x.k.expand = pointwise(ch.n, c, h, w, b.hidden);
    x.k.depthwise =
        testing::conv_shape(ch.n, b.hidden, h, w, b.hidden, 3, 3, b.stride, b.stride, 1, 1, 1, 1, b.depthwise ? b.hidden : 1);
    x.k.project = pointwise(ch.n, b.hidden, x.k.depthwise.out_h(), x.k.depthwise.out_w(), b.c_out);
    x.we = random_vec<float>(b.expand ? b.hidden * c : 0, -0.4, 0.4, seed++);
    x.be = random_vec<float>(b.hidden, -0.5, 0.5, seed++);
    x.wd = random_vec<float>(b.hidden * (b.depthwise ? 1 : b.hidden) * 9, -0.4, 0.4, seed++);
    x.bd = random_vec<float>(b.hidden, -0.5, 0.5, seed++);
    x.wp = random_vec<float>(b.c_out * b.hidden, -0.4, 0.4, seed++);
    x.bp = random_vec<float>(b.c_out, -0.5, 0.5, seed++);
    c = b.c_out;
    h = x.k.project.h;
    w = x.k.project.w;
    out.push_back(std::move(x));
  }
  return out;
}

void set_biases(std::vector<Built>& blocks, bool on) {
  for (Built& b : blocks) {
    b.k.expand_weight = b.we.data();
    b.k.expand_bias = on && b.k.has_expand ? b.be.data() : nullptr;
    b.k.depthwise_weight = b.wd.data();
    b.k.depthwise_bias = on ? b.bd.data() : nullptr;
    b.k.project_weight = b.wp.data();
    b.k.project_bias = on ? b.bp.data() : nullptr;
  }
}

std::int64_t output_size(const Conv2dShape& s) { return s.n * s.c_out * s.out_h() * s.out_w(); }

double worst_relative(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::fabs(got[i] - want[i]) / (1 + std::fabs(want[i])));
  return worst;
}

using InvertedResidualChainThreads = testing::OmpThreadsTest;

TEST_P(InvertedResidualChainThreads, MatchesTheConvolutionsAndTheReferenceLoops) {
  for (const Chain& ch : kChains) {
    std::vector<Built> blocks = build(ch);
    if (GetParam() == 2) {  // the table covers both paths
      for (std::size_t b = 0; b < blocks.size(); ++b)
        EXPECT_EQ(cpu::inverted_residual_fuses(blocks[b].k), ch.blocks[b].fuses_on_two) << describe(ch) << " block " << b;
    }
    const auto x = random_vec<float>(ch.n * ch.c * ch.h * ch.w, -1, 1, 1);
    for (bool biases : {true, false}) {
      const std::string what = describe(ch) + (biases ? " with biases" : " without biases");
      set_biases(blocks, biases);
      std::vector<InvertedResidualBlock> k;
      for (const Built& b : blocks) k.push_back(b.k);
      std::vector<float> got(static_cast<std::size_t>(output_size(k.back().project)), -7.0f);
      cpu().inverted_residual_chain(DType::Float32, static_cast<std::int64_t>(k.size()), k.data(), x.data(),
                                    got.data());

      // The conv2d calls, block by block, and the reference loops in double.
      ConvEpilogue relu6;
      relu6.activate = true;
      relu6.activation = UnaryOp::Relu6;
      std::vector<float> in = x;
      std::vector<double> ref = to_doubles(x);
      for (const Built& b : blocks) {
        std::vector<float> e = in, d(static_cast<std::size_t>(output_size(b.k.depthwise)));
        std::vector<double> re = ref, rd(d.size());
        if (b.k.has_expand) {
          e.resize(static_cast<std::size_t>(output_size(b.k.expand)));
          cpu().conv2d(DType::Float32, b.k.expand, in.data(), b.we.data(), b.k.expand_bias, relu6, e.data());
          re.resize(e.size());
          const auto dwe = to_doubles(b.we), dbe = to_doubles(b.be);
          reference::conv2d(b.k.expand, ref.data(), dwe.data(), biases ? dbe.data() : nullptr, re.data());
          for (double& v : re) v = std::clamp(v, 0.0, 6.0);
        }
        cpu().conv2d(DType::Float32, b.k.depthwise, e.data(), b.wd.data(), b.k.depthwise_bias, relu6, d.data());
        const auto dwd = to_doubles(b.wd), dbd = to_doubles(b.bd), dwp = to_doubles(b.wp), dbp = to_doubles(b.bp);
        reference::conv2d(b.k.depthwise, re.data(), dwd.data(), biases ? dbd.data() : nullptr, rd.data());
        for (double& v : rd) v = std::clamp(v, 0.0, 6.0);
        ConvEpilogue add;
        add.residual = b.k.residual ? in.data() : nullptr;
        std::vector<float> y(static_cast<std::size_t>(output_size(b.k.project)));
        std::vector<double> ry(y.size());
        cpu().conv2d(DType::Float32, b.k.project, d.data(), b.wp.data(), b.k.project_bias, add, y.data());
        reference::conv2d(b.k.project, rd.data(), dwp.data(), biases ? dbp.data() : nullptr, ry.data());
        if (b.k.residual)
          for (std::size_t j = 0; j < ry.size(); ++j) ry[j] += ref[j];
        in = std::move(y);
        ref = std::move(ry);
      }
      EXPECT_LT(worst_relative(got, to_doubles(in)), 1e-5) << what << ": against the conv2d calls";
      EXPECT_LT(worst_relative(got, ref), 1e-4) << what << ": against the reference loops";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, InvertedResidualChainThreads, ::testing::Values(1, 2));

}  // namespace
}  // namespace shrink::kernels
