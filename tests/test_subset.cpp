// Seeded subsets: sample_indices (core/random.h) draws distinct indices, the same for the same
// stream, each prefix the draw of a smaller count; random_subset (datasets/subset.h) keeps whole
// samples (an image with its own label), in the split's order, the same for the same seed, and
// refuses a count the split cannot give.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/random.h"
#include "datasets/subset.h"

namespace {

using shrink::Generator;
using shrink::Tensor;
using shrink::datasets::random_subset;
using shrink::datasets::Split;

TEST(SampleIndices, DistinctInRangeAndPrefixOfALargerDraw) {
  for (std::int64_t total : {1, 7, 100}) {
    for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, total / 2, total, total + 5}) {
      Generator a(11), b(11);
      const auto draw = shrink::sample_indices(total, n, a);
      ASSERT_EQ(static_cast<std::int64_t>(draw.size()), std::min(n, total));
      EXPECT_EQ(std::set<std::int64_t>(draw.begin(), draw.end()).size(), draw.size()) << total << " " << n;
      for (std::int64_t i : draw) EXPECT_TRUE(i >= 0 && i < total) << i;
      EXPECT_EQ(shrink::sample_indices(total, n, b), draw);  // same stream, same draw
    }
  }
  // A partial Fisher-Yates shuffle: the first k indices of a draw of n are the draw of k.
  Generator a(5), b(5);
  const auto ten = shrink::sample_indices(1000, 10, a);
  const auto four = shrink::sample_indices(1000, 4, b);
  EXPECT_TRUE(std::equal(four.begin(), four.end(), ten.begin()));
  Generator g(5);
  EXPECT_THROW(shrink::sample_indices(10, -1, g), shrink::Error);
}

// Image i holds the value i in every pixel; its label is i % 7.
Split numbered_split(std::int64_t n) {
  std::vector<float> pixels;
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < n; ++i) {
    for (int p = 0; p < 6; ++p) pixels.push_back(static_cast<float>(i));
    labels.push_back(i % 7);
  }
  return {Tensor::from_vector(pixels, {n, 1, 2, 3}), Tensor::from_vector(labels, {n})};
}

std::vector<std::int64_t> sample_numbers(const Split& s) {
  const auto pixels = s.images.to_vector<float>();
  const auto labels = s.labels.to_vector<std::int64_t>();
  std::vector<std::int64_t> numbers;
  for (std::int64_t i = 0; i < s.size(); ++i) {
    const float v = pixels[static_cast<std::size_t>(i * 6)];
    for (int p = 0; p < 6; ++p) EXPECT_EQ(pixels[static_cast<std::size_t>(i * 6 + p)], v) << "sample " << i;
    EXPECT_EQ(labels[static_cast<std::size_t>(i)], static_cast<std::int64_t>(v) % 7) << "label of sample " << i;
    numbers.push_back(static_cast<std::int64_t>(v));
  }
  return numbers;
}

TEST(RandomSubset, KeepsWholeSamplesInOrderAndFollowsTheSeed) {
  const Split split = numbered_split(50);
  const Split a = random_subset(split, 20, 3);
  EXPECT_EQ(a.images.shape(), (shrink::Shape{20, 1, 2, 3}));
  const auto numbers = sample_numbers(a);
  EXPECT_TRUE(std::is_sorted(numbers.begin(), numbers.end()));
  EXPECT_EQ(std::set<std::int64_t>(numbers.begin(), numbers.end()).size(), 20u);
  EXPECT_EQ(sample_numbers(random_subset(split, 20, 3)), numbers);
  EXPECT_NE(sample_numbers(random_subset(split, 20, 4)), numbers);
  // The whole split: every sample, in order.
  std::vector<std::int64_t> all(50);
  for (std::int64_t i = 0; i < 50; ++i) all[static_cast<std::size_t>(i)] = i;
  EXPECT_EQ(sample_numbers(random_subset(split, 50, 3)), all);
}

TEST(RandomSubset, ACountTheSplitCannotGiveIsAnError) {
  const Split split = numbered_split(50);
  for (std::int64_t n : {0, 51, -3}) {
    try {
      random_subset(split, n, 1);
      ADD_FAILURE() << "no error for " << n;
    } catch (const shrink::Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(n) + " samples asked of a split of 50"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
