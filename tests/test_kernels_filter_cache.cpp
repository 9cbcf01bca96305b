// Transformed filters kept across calls (kernels/cpu/filter_cache.h): a second call with the same
// weights reuses the transform; weights changed in place at the same address (an optimizer step)
// are transformed again, through every Winograd kernel that keeps its filters, the residual chain
// included; past the budget nothing is kept and every call computes its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/conv_winograd_channels_last.h"
#include "kernels/cpu/filter_cache.h"
#include "kernels/reference/conv.h"
#include "tests/conv_shapes.h"
#include "tests/test_helpers.h"

namespace shrink::kernels {
namespace {

constexpr auto conv = testing::conv_shape;

// The budget is process-wide: each test starts from an empty cache with the default budget.
class FilterCache : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = cpu::filter_cache_budget();
    cpu::clear_filter_cache();
  }
  void TearDown() override {
    cpu::set_filter_cache_budget(saved_);
    cpu::clear_filter_cache();
  }

 private:
  std::int64_t saved_ = 0;
};

// fill writes `value` everywhere and counts its calls.
struct CountingFill {
  int calls = 0;
  float value = 0.0f;
  void operator()(float* u, std::int64_t n) {
    ++calls;
    for (std::int64_t i = 0; i < n; ++i) u[i] = value;
  }
};

TEST_F(FilterCache, ReusesTheTransformOnlyWhileTheWeightsAreUnchanged) {
  std::vector<float> w(90, 0.5f), scratch(40, -1.0f);
  const cpu::FilterKey key{cpu::FilterTransform::WinogradChannelsLast, w.data(), 90, 2, 5};
  CountingFill fill;
  auto run = [&](float value) {
    fill.value = value;
    cpu::FilterHold hold;
    const float* u = cpu::transformed_filters(key, 40, scratch.data(), [&](float* d) { fill(d, 40); }, hold);
    return std::vector<float>(u, u + 40);
  };
  EXPECT_EQ(run(1.0f), std::vector<float>(40, 1.0f));
  EXPECT_EQ(fill.calls, 1);
  EXPECT_EQ(run(2.0f), std::vector<float>(40, 1.0f));  // the same weights: kept, fill not called
  EXPECT_EQ(fill.calls, 1);
  EXPECT_GT(cpu::filter_cache_bytes(), 0);
  w[89] = 0.25f;  // one weight changed in place
  EXPECT_EQ(run(3.0f), std::vector<float>(40, 3.0f));
  EXPECT_EQ(fill.calls, 2);
  EXPECT_EQ(scratch, std::vector<float>(40, -1.0f));  // kept entries never touch the scratch
}

TEST_F(FilterCache, PastTheBudgetEveryCallComputesIntoItsScratch) {
  cpu::set_filter_cache_budget(0);
  std::vector<float> w(18, 1.0f), scratch(8, 0.0f);
  const cpu::FilterKey key{cpu::FilterTransform::WinogradPanels, w.data(), 18, 2, 1};
  CountingFill fill;
  for (int i = 0; i < 3; ++i) {
    cpu::FilterHold hold;
    EXPECT_EQ(cpu::transformed_filters(key, 8, scratch.data(), [&](float* d) { fill(d, 8); }, hold), scratch.data());
  }
  EXPECT_EQ(fill.calls, 3);
  EXPECT_EQ(cpu::filter_cache_bytes(), 0);
}

TEST_F(FilterCache, ABypassKeepsNothingWhileItLives) {
  std::vector<float> w(18, 1.0f), scratch(8, 0.0f);
  const cpu::FilterKey key{cpu::FilterTransform::WinogradPanels, w.data(), 18, 2, 1};
  CountingFill fill;
  {
    const cpu::FilterCacheBypass bypass;
    cpu::FilterHold hold;
    EXPECT_EQ(cpu::transformed_filters(key, 8, scratch.data(), [&](float* d) { fill(d, 8); }, hold), scratch.data());
    EXPECT_EQ(cpu::filter_cache_bytes(), 0);
  }
  cpu::FilterHold hold;
  EXPECT_NE(cpu::transformed_filters(key, 8, scratch.data(), [&](float* d) { fill(d, 8); }, hold), scratch.data());
  EXPECT_GT(cpu::filter_cache_bytes(), 0);
  EXPECT_EQ(fill.calls, 2);
}

TEST_F(FilterCache, DropsTheLeastRecentlyUsedEntriesPastTheBudget) {
  // Each entry: 9 weights + 27 floats of U = 144 bytes; a budget of 300 holds two.
  cpu::set_filter_cache_budget(300);
  std::vector<std::vector<float>> ws(3, std::vector<float>(9, 1.0f));
  std::vector<float> scratch(27);
  CountingFill fill;
  auto touch = [&](int i) {
    cpu::FilterHold hold;
    cpu::transformed_filters({cpu::FilterTransform::WinogradPanels, ws[i].data(), 9, 1, 1}, 27, scratch.data(),
                             [&](float* d) { fill(d, 27); }, hold);
  };
  touch(0);
  touch(1);
  touch(0);  // 1 is now the least recently used
  touch(2);  // evicts 1
  EXPECT_LE(cpu::filter_cache_bytes(), 300);
  const int before = fill.calls;
  touch(0);
  touch(2);
  EXPECT_EQ(fill.calls, before);  // both kept
  touch(1);
  EXPECT_EQ(fill.calls, before + 1);  // recomputed
}

using ForwardKernel = void (*)(const Conv2dShape&, const float*, const float*, const float*, float*,
                               const ConvEpilogue&);

// y = conv(x, w) against the reference, then w changed in place and the same call again.
void expect_updates_seen(ForwardKernel forward, const Conv2dShape& s) {
  const auto x = testing::random_vec<float>(s.n * s.c_in * s.h * s.w, -1, 1, 1);
  auto w = testing::random_vec<float>(s.c_out * s.c_in * 9, -1, 1, 2);
  std::vector<float> y(static_cast<std::size_t>(s.n * s.c_out * s.out_h() * s.out_w()));
  std::vector<double> want(y.size());
  const double tol = 100 * 6e-8 * static_cast<double>(9 * s.c_in + 4);
  for (int step = 0; step < 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    forward(s, x.data(), w.data(), nullptr, y.data(), {});
    reference::conv2d(s, testing::to_doubles(x).data(), testing::to_doubles(w).data(), static_cast<const double*>(nullptr), want.data());
    EXPECT_TRUE(testing::all_close("conv2d", y, want, tol, tol));
    for (std::size_t i = step; i < w.size(); i += 7) w[i] = -0.5f * w[i] + 0.1f;  // an "optimizer step"
  }
}

TEST_F(FilterCache, BatchedWinogradSeesWeightsChangedInPlace) {
  expect_updates_seen(cpu::conv2d_forward_winograd, conv(2, 16, 12, 12, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1));
  EXPECT_GT(cpu::filter_cache_bytes(), 0);
}

TEST_F(FilterCache, ChannelsLastWinogradSeesWeightsChangedInPlace) {
  expect_updates_seen(cpu::conv2d_forward_winograd_channels_last, conv(4, 8, 16, 16, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1));
  EXPECT_GT(cpu::filter_cache_bytes(), 0);
}

TEST_F(FilterCache, ResidualChainSeesWeightsChangedInPlace) {
  // Two blocks x + conv2(relu(conv1(x))) -> relu, 8 channels at 8x8; the second block's first
  // convolution's weights change between calls.
  const Conv2dShape s = conv(4, 8, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1);
  const Conv2dShape s1[2] = {s, s}, s2[2] = {s, s};
  std::vector<std::vector<float>> w;
  for (int i = 0; i < 4; ++i) w.push_back(testing::random_vec<float>(8 * 8 * 9, -0.3, 0.3, 10 + i));
  const auto x = testing::random_vec<float>(4 * 8 * 64, -1, 1, 1);
  std::vector<float> y(x.size());
  const std::int64_t elems = static_cast<std::int64_t>(x.size());
  for (int step = 0; step < 2; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const float* w1[2] = {w[0].data(), w[2].data()};
    const float* w2[2] = {w[1].data(), w[3].data()};
    const float* none[2] = {nullptr, nullptr};
    cpu::conv2d_residual_chain_winograd_channels_last(2, s1, s2, x.data(), w1, none, w2, none, y.data());
    // Reference: block by block in doubles.
    std::vector<double> cur = testing::to_doubles(x), mid(cur.size()), out(cur.size());
    for (int b = 0; b < 2; ++b) {
      reference::conv2d(s, cur.data(), testing::to_doubles(w[2 * b]).data(), static_cast<const double*>(nullptr), mid.data());
      for (auto& v : mid) v = v > 0 ? v : 0;
      reference::conv2d(s, mid.data(), testing::to_doubles(w[2 * b + 1]).data(), static_cast<const double*>(nullptr), out.data());
      for (std::int64_t i = 0; i < elems; ++i) out[i] = std::max(0.0, out[i] + cur[i]);
      cur = out;
    }
    EXPECT_TRUE(testing::all_close("residual chain", y, cur, 1e-4, 1e-4));
    for (auto& v : w[2]) v = -v;
  }
}

}  // namespace
}  // namespace shrink::kernels
