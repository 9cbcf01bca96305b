// Augmentation (datasets/augment.h): a crop is a shifted window of the image with the fill
// outside it, a flip is an exact mirror, padding 0 without flip is the identity, a seed
// fixes the batches, and the option text parses or is refused by name.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "core/error.h"
#include "datasets/augment.h"

namespace {

using shrink::Generator;
using shrink::Tensor;
using namespace shrink::datasets;

constexpr std::int64_t kC = 2, kH = 5, kW = 7;
constexpr float kFill0 = -3.f, kFill1 = -4.f;

// Sample i of (n, 2, 5, 7): value 1000 i + 100 c + 10 y + x, all distinct and never a fill.
Batch numbered_batch(std::int64_t n) {
  std::vector<float> v;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < kC; ++c)
      for (std::int64_t y = 0; y < kH; ++y)
        for (std::int64_t x = 0; x < kW; ++x) v.push_back(static_cast<float>(1000 * i + 100 * c + 10 * y + x));
  return {Tensor::from_vector(v, {n, kC, kH, kW}), Tensor::zeros({n}, shrink::DType::Int64)};
}

float expected(std::int64_t i, std::int64_t c, std::int64_t y, std::int64_t x, std::int64_t pad, std::int64_t dy,
               std::int64_t dx, bool flip) {
  if (flip) x = kW - 1 - x;
  const std::int64_t sy = y + dy - pad, sx = x + dx - pad;
  if (sy < 0 || sy >= kH || sx < 0 || sx >= kW) return c == 0 ? kFill0 : kFill1;
  return static_cast<float>(1000 * i + 100 * c + 10 * sy + sx);
}

bool matches(const float* sample, std::int64_t i, std::int64_t pad, std::int64_t dy, std::int64_t dx, bool flip) {
  for (std::int64_t c = 0; c < kC; ++c)
    for (std::int64_t y = 0; y < kH; ++y)
      for (std::int64_t x = 0; x < kW; ++x)
        if (sample[(c * kH + y) * kW + x] != expected(i, c, y, x, pad, dy, dx, flip)) return false;
  return true;
}

// The (dy, dx, flip) that explain each augmented sample; fails a sample that none explains.
std::vector<std::tuple<std::int64_t, std::int64_t, bool>> explain(const Batch& batch, std::int64_t pad) {
  std::vector<std::tuple<std::int64_t, std::int64_t, bool>> found;
  const float* data = batch.images.data<float>();
  for (std::int64_t i = 0; i < batch.images.size(0); ++i) {
    bool ok = false;
    for (std::int64_t dy = 0; dy <= 2 * pad && !ok; ++dy)
      for (std::int64_t dx = 0; dx <= 2 * pad && !ok; ++dx)
        for (bool flip : {false, true})
          if (!ok && matches(data + i * kC * kH * kW, i, pad, dy, dx, flip)) {
            found.emplace_back(dy, dx, flip);
            ok = true;
          }
    EXPECT_TRUE(ok) << "sample " << i << " is no crop window or flip of the input";
  }
  return found;
}

TEST(Augment, NothingEnabledIsTheIdentity) {
  Batch batch = numbered_batch(4);
  const auto before = batch.images.to_vector<float>();
  Generator gen(1);
  augmentation_transform({0, false}, {kFill0, kFill1})(batch, gen);
  EXPECT_EQ(batch.images.to_vector<float>(), before);
  EXPECT_FALSE((Augmentation{0, false}).enabled());
}

TEST(Augment, FlipMirrorsAboutHalfTheSamples) {
  Batch batch = numbered_batch(64);
  Generator gen(2);
  augmentation_transform({0, true}, {kFill0, kFill1})(batch, gen);
  int flipped = 0;
  for (const auto& [dy, dx, flip] : explain(batch, 0)) flipped += flip;
  EXPECT_GT(flipped, 16);
  EXPECT_LT(flipped, 48);
}

TEST(Augment, CropIsAShiftedWindowWithFill) {
  const std::int64_t pad = 3;  // wider than half the height: whole fill rows happen
  Batch batch = numbered_batch(200);
  Generator gen(3);
  augmentation_transform({pad, true}, {kFill0, kFill1})(batch, gen);
  std::set<std::pair<std::int64_t, std::int64_t>> offsets;
  int flipped = 0;
  for (const auto& [dy, dx, flip] : explain(batch, pad)) {
    offsets.insert({dy, dx});
    flipped += flip;
  }
  EXPECT_GT(offsets.size(), 35u) << "the 49 offsets are all drawn";
  EXPECT_GT(flipped, 60);
  EXPECT_LT(flipped, 140);
}

TEST(Augment, OneFillForAllChannels) {
  Batch batch = numbered_batch(20);
  Generator gen(4);
  augmentation_transform({2, false}, {-9.f})(batch, gen);
  const auto v = batch.images.to_vector<float>();
  std::int64_t filled_in_channel_1 = 0;
  for (std::int64_t i = 0; i < 20; ++i)
    for (std::int64_t k = 0; k < kC * kH * kW; ++k) {
      const float x = v[i * kC * kH * kW + k];
      ASSERT_TRUE(x == -9.f || (x >= 1000 * i && x < 1000 * i + 200)) << x;
      filled_in_channel_1 += k >= kH * kW && x == -9.f;
    }
  EXPECT_GT(filled_in_channel_1, 0);
}

TEST(Augment, SameSeedSameBatchesThroughTheLoader) {
  auto run = [](std::uint64_t seed, std::int64_t epoch) {
    Batch all = numbered_batch(30);
    DataLoader loader(Split{all.images, Tensor::arange(30)}, 8, true, seed);
    loader.set_transform(augmentation_transform({2, true}, {kFill0, kFill1}));
    loader.start_epoch(epoch);
    std::vector<float> values;
    while (auto batch = loader.next())
      for (float v : batch->images.to_vector<float>()) values.push_back(v);
    return values;
  };
  EXPECT_EQ(run(5, 0), run(5, 0));
  EXPECT_NE(run(5, 0), run(5, 1));
  EXPECT_NE(run(5, 0), run(6, 0));
}

TEST(Augment, RefusesBadBatchesAndFills) {
  Generator gen(0);
  Batch flat{Tensor::zeros({2, 6}), Tensor::zeros({2}, shrink::DType::Int64)};
  EXPECT_THROW(augmentation_transform({1, false}, {0.f})(flat, gen), shrink::Error);
  Batch batch = numbered_batch(2);
  EXPECT_THROW(augmentation_transform({1, false}, {0.f, 0.f, 0.f})(batch, gen), shrink::Error);
  EXPECT_THROW(augmentation_transform({1, false}, {}), shrink::Error);
  EXPECT_THROW(augmentation_transform({-1, false}, {0.f}), shrink::Error);
}

TEST(Augment, ParsesTheOptionText) {
  Augmentation a = parse_augmentation("crop:4,flip");
  EXPECT_EQ(a.crop_padding, 4);
  EXPECT_TRUE(a.horizontal_flip);
  a = parse_augmentation("flip");
  EXPECT_EQ(a.crop_padding, 0);
  EXPECT_TRUE(a.horizontal_flip);
  EXPECT_FALSE(parse_augmentation("none").enabled());
  EXPECT_EQ(augmentation_str(parse_augmentation("flip,crop:2")), "crop:2,flip");
  EXPECT_EQ(augmentation_str({}), "none");
  for (const char* bad : {"crop", "crop:", "crop:-1", "crop:65", "crop:4x", "flip,flip", "crop:1,crop:2",
                          "rotate", "flip,", ",flip", "none,flip"}) {
    try {
      parse_augmentation(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const shrink::Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

}  // namespace
