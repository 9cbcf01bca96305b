// Sizing at load time (datasets/image_options.h): centred padding with the normalised
// black of each channel, grey-to-C replication, the statistics and sample shape that
// follow, and the errors for sizes and channel changes the option cannot make.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/error.h"
#include "datasets/idx.h"
#include "datasets/image_options.h"
#include "datasets/registry.h"
#include "tests/generated_cifar10.h"

namespace {

namespace fs = std::filesystem;
using namespace shrink::datasets;
using shrink::Shape;

fs::path temp_dir() {
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(testing::TempDir()) / "shrink_test_image_options" / info->name();
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Image i, pixel (y, x) of a 5x3 image: (i * 13 + (y * 3 + x) * 17 + 1) % 256, never 0
// for the pixels used below, so a padded border is told apart from the image.
std::uint8_t pixel(std::int64_t i, std::int64_t y, std::int64_t x) {
  return static_cast<std::uint8_t>((i * 13 + (y * 3 + x) * 17 + 1) % 256);
}

std::string write_idx_set(const fs::path& dir) {
  fs::create_directories(dir);
  for (const auto& [prefix, n] : {std::pair<std::string, std::int64_t>{"train", 6}, {"t10k", 4}}) {
    IdxArray images{{n, 5, 3}, {}};
    IdxArray labels{{n}, {}};
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t y = 0; y < 5; ++y)
        for (std::int64_t x = 0; x < 3; ++x) images.data.push_back(pixel(i + (prefix == "t10k" ? 6 : 0), y, x));
      labels.data.push_back(static_cast<std::uint8_t>(i % 2));
    }
    write_idx((dir / (prefix + "-images-idx3-ubyte")).string(), images);
    write_idx((dir / (prefix + "-labels-idx1-ubyte")).string(), labels);
  }
  return "idx:" + dir.string();
}

std::string load_error(const std::string& spec, const ImageOptions& image) {
  try {
    load_dataset(spec, image);
  } catch (const shrink::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(ImageOptions, PadsCentredWithNormalisedBlack) {
  const std::string spec = write_idx_set(temp_dir());
  const Dataset plain = load_dataset(spec);
  const Dataset ds = load_dataset(spec, {8, 0});
  EXPECT_EQ(ds.sample_shape, (Shape{1, 8, 8}));
  EXPECT_EQ(ds.stored_shape, (Shape{1, 5, 3}));
  EXPECT_EQ(ds.image.input_size, 8);
  ASSERT_EQ(ds.train.images.shape(), (Shape{6, 1, 8, 8}));
  ASSERT_EQ(ds.test.images.shape(), (Shape{4, 1, 8, 8}));
  EXPECT_EQ(ds.channel_mean, plain.channel_mean);  // padding does not change the statistics
  const float black = static_cast<float>((0.0 - ds.mean) / ds.std);
  EXPECT_LT(black, -0.5f) << "black is the normalised raw 0, not 0";
  // (8 - 5) / 2 = 1 row above, 2 below; (8 - 3) / 2 = 2 columns left, 3 right.
  const auto padded = ds.test.images.to_vector<float>();
  const auto stored = plain.test.images.to_vector<float>();
  for (std::int64_t i = 0; i < 4; ++i)
    for (std::int64_t y = 0; y < 8; ++y)
      for (std::int64_t x = 0; x < 8; ++x) {
        const bool inside = y >= 1 && y < 6 && x >= 2 && x < 5;
        const float want = inside ? stored[i * 15 + (y - 1) * 3 + (x - 2)] : black;
        ASSERT_EQ(padded[i * 64 + y * 8 + x], want) << i << " " << y << " " << x;
      }
}

TEST(ImageOptions, ReplicatesGreyToEveryChannel) {
  const std::string spec = write_idx_set(temp_dir());
  const Dataset plain = load_dataset(spec);
  const Dataset ds = load_dataset(spec, {0, 3});
  EXPECT_EQ(ds.sample_shape, (Shape{3, 5, 3}));
  ASSERT_EQ(ds.channel_mean.size(), 3u);
  ASSERT_EQ(ds.channel_std.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(ds.channel_mean[c], plain.mean);
    EXPECT_EQ(ds.channel_std[c], plain.std);
  }
  const auto grey = plain.train.images.to_vector<float>();
  const auto rgb = ds.train.images.to_vector<float>();
  for (std::int64_t i = 0; i < 6; ++i)
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 15; ++k) ASSERT_EQ(rgb[(i * 3 + c) * 15 + k], grey[i * 15 + k]);

  // Both at once, to any channel count: every channel is the padded grey image.
  const Dataset both = load_dataset(spec, {6, 2});
  EXPECT_EQ(both.sample_shape, (Shape{2, 6, 6}));
  const Dataset padded = load_dataset(spec, {6, 0});
  const auto one = padded.test.images.to_vector<float>();
  const auto two = both.test.images.to_vector<float>();
  for (std::int64_t i = 0; i < 4; ++i)
    for (int c = 0; c < 2; ++c)
      for (int k = 0; k < 36; ++k) ASSERT_EQ(two[(i * 2 + c) * 36 + k], one[i * 36 + k]);
}

TEST(ImageOptions, CifarPadsEachChannelWithItsOwnBlack) {
  const fs::path dir = temp_dir();
  const std::string spec = shrink::testing::write_cifar10_dir(dir, 1, 2);
  const Dataset ds = load_dataset(spec, {36, 3});  // 3 channels as stored: a no-op for channels
  EXPECT_EQ(ds.sample_shape, (Shape{3, 36, 36}));
  const std::vector<float> black = black_values(ds);
  const auto v = ds.train.images.to_vector<float>();
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(v[c * 36 * 36], black[c]);                     // corner
    EXPECT_EQ(v[c * 36 * 36 + 2 * 36 + 1], black[c]);        // column 1 of row 2: left border
    EXPECT_NE(v[c * 36 * 36 + 2 * 36 + 3], black[c]);        // image pixel (0, 1): raw 11
  }
  EXPECT_NE(black[0], black[2]);
}

TEST(ImageOptions, RefusesWhatItCannotDo) {
  const fs::path dir = temp_dir();
  const std::string spec = write_idx_set(dir / "idx");
  std::string e = load_error(spec, {4, 0});
  EXPECT_TRUE(contains(e, "--input-size 4 is smaller than the 5x3")) << e;
  e = load_error(spec, {kMaxInputSize + 1, 0});
  EXPECT_TRUE(contains(e, "--input-size")) << e;
  e = load_error(spec, {0, -1});
  EXPECT_TRUE(contains(e, "--channels")) << e;
  const std::string cifar = shrink::testing::write_cifar10_dir(dir / "cifar", 1, 1);
  e = load_error(cifar, {0, 1});
  EXPECT_TRUE(contains(e, "--channels 1")) << e;
  EXPECT_TRUE(contains(e, "has 3 channels")) << e;
  e = load_error(cifar, {31, 0});
  EXPECT_TRUE(contains(e, "--input-size 31")) << e;

  // Applied once only: a sized set cannot be sized again.
  Dataset ds = load_dataset(spec, {8, 0});
  EXPECT_THROW(apply_image_options(ds, {10, 0}), shrink::Error);
}

TEST(ImageOptions, ZerosKeepTheStoredImages) {
  const std::string spec = write_idx_set(temp_dir());
  const Dataset a = load_dataset(spec);
  const Dataset b = load_dataset(spec, {5, 1});  // 5 >= H and W = 3 pads columns only
  EXPECT_EQ(a.sample_shape, (Shape{1, 5, 3}));
  EXPECT_EQ(b.sample_shape, (Shape{1, 5, 5}));
  const Dataset c = load_dataset(spec, {0, 1});
  EXPECT_EQ(c.train.images.to_vector<float>(), a.train.images.to_vector<float>());
}

}  // namespace
