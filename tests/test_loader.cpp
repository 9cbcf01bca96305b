// DataLoader: each sample exactly once per epoch, batch sizes with and without drop_last,
// order fixed by (seed, epoch), images travelling with their labels, worker errors
// reaching the consumer, and shutdown mid-epoch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "core/error.h"
#include "datasets/loader.h"

namespace {

using shrink::DType;
using shrink::Error;
using shrink::Tensor;
using namespace shrink::datasets;

// Sample i: a (2, 3) image whose six values are i * 10 + k, and label i.
Split indexed_split(std::int64_t n) {
  std::vector<float> images;
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < 6; ++k) images.push_back(static_cast<float>(i * 10 + k));
    labels.push_back(i);
  }
  return {Tensor::from_vector(images, {n, 2, 3}), Tensor::from_vector(labels, {n})};
}

// One epoch's labels (= sample indices), batch by batch, checking each image row matches.
std::vector<std::vector<std::int64_t>> run_epoch(DataLoader& loader, std::int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<std::vector<std::int64_t>> batches;
  while (auto batch = loader.next()) {
    EXPECT_EQ(batch->images.dim(), 3);
    EXPECT_EQ(batch->images.size(0), batch->labels.size(0));
    const auto images = batch->images.to_vector<float>();
    const auto labels = batch->labels.to_vector<std::int64_t>();
    for (std::size_t r = 0; r < labels.size(); ++r)
      for (int k = 0; k < 6; ++k)
        EXPECT_EQ(images[r * 6 + k], static_cast<float>(labels[r] * 10 + k));
    batches.push_back(labels);
  }
  return batches;
}

std::vector<std::int64_t> flat(const std::vector<std::vector<std::int64_t>>& batches) {
  std::vector<std::int64_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

TEST(DataLoader, EverySampleOncePerEpoch) {
  for (std::int64_t batch_size : {1, 3, 7, 10, 64}) {
    for (bool shuffle : {false, true}) {
      DataLoader loader(indexed_split(23), batch_size, shuffle, /*seed=*/5);
      for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
        auto order = flat(run_epoch(loader, epoch));
        ASSERT_EQ(order.size(), 23u) << batch_size;
        std::sort(order.begin(), order.end());
        for (std::int64_t i = 0; i < 23; ++i) EXPECT_EQ(order[i], i) << batch_size;
      }
    }
  }
}

TEST(DataLoader, BatchSizesAndDropLast) {
  DataLoader keep(indexed_split(10), 4, true, 1);
  EXPECT_EQ(keep.size(), 3);
  const auto kept = run_epoch(keep, 0);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0].size(), 4u);
  EXPECT_EQ(kept[1].size(), 4u);
  EXPECT_EQ(kept[2].size(), 2u);

  DataLoader drop(indexed_split(10), 4, true, 1, /*drop_last=*/true);
  EXPECT_EQ(drop.size(), 2);
  const auto dropped = run_epoch(drop, 0);
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_EQ(dropped[0].size(), 4u);
  EXPECT_EQ(dropped[1].size(), 4u);
  std::set<std::int64_t> distinct;
  for (auto i : flat(dropped)) distinct.insert(i);
  EXPECT_EQ(distinct.size(), 8u);

  DataLoader exact(indexed_split(12), 4, false, 1, true);
  EXPECT_EQ(exact.size(), 3);
  EXPECT_EQ(flat(run_epoch(exact, 0)).size(), 12u);
}

TEST(DataLoader, NoShuffleKeepsSplitOrder) {
  DataLoader loader(indexed_split(9), 4, /*shuffle=*/false, 3);
  for (std::int64_t epoch : {0, 1}) {
    const auto order = flat(run_epoch(loader, epoch));
    for (std::int64_t i = 0; i < 9; ++i) EXPECT_EQ(order[i], i);
  }
}

TEST(DataLoader, SeedAndEpochFixTheOrder) {
  const Split split = indexed_split(100);
  DataLoader a(split, 16, true, 42), b(split, 16, true, 42), other_seed(split, 16, true, 43);
  const auto a0 = flat(run_epoch(a, 0)), a1 = flat(run_epoch(a, 1));
  EXPECT_EQ(a0, flat(run_epoch(b, 0)));  // same seed, same epoch: same order
  EXPECT_EQ(a1, flat(run_epoch(b, 1)));
  EXPECT_NE(a0, a1);                     // a new epoch reshuffles
  EXPECT_NE(a0, flat(run_epoch(other_seed, 0)));
  EXPECT_EQ(a0, flat(run_epoch(a, 0)));  // replaying an epoch replays its order
  std::vector<std::int64_t> identity(100);
  for (int i = 0; i < 100; ++i) identity[i] = i;
  EXPECT_NE(a0, identity);
}

TEST(DataLoader, NextWithoutStartEpochRunsEpochZeroThenStops) {
  DataLoader loader(indexed_split(5), 2, true, 9), reference(indexed_split(5), 2, true, 9);
  std::vector<std::int64_t> order;
  while (auto batch = loader.next())
    for (auto l : batch->labels.to_vector<std::int64_t>()) order.push_back(l);
  EXPECT_EQ(order, flat(run_epoch(reference, 0)));
  EXPECT_FALSE(loader.next().has_value());  // stays finished until the next start_epoch
}

TEST(DataLoader, RestartingMidEpochGivesAFullEpoch) {
  DataLoader loader(indexed_split(50), 4, true, 2);
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next().has_value());
  EXPECT_EQ(flat(run_epoch(loader, 1)).size(), 50u);
}

TEST(DataLoader, DestroyingMidEpochDoesNotHang) {
  // Worker blocked on a full queue, worker still gathering, worker never consumed from.
  for (int taken : {0, 1, 5}) {
    DataLoader loader(indexed_split(2000), 3, true, 7);
    loader.start_epoch(0);
    for (int i = 0; i < taken; ++i) ASSERT_TRUE(loader.next().has_value());
  }
  DataLoader never_started(indexed_split(10), 3, true, 7);
  SUCCEED();
}

TEST(DataLoader, WorkerErrorsReachTheConsumer) {
  DataLoader loader(indexed_split(20), 4, false, 0);
  loader.set_transform([](Batch& batch, shrink::Generator&) {
    if (batch.labels.to_vector<std::int64_t>()[0] == 8) shrink::fail("augment: boom at batch 2");
  });
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next().has_value());  // batches before the failure still arrive
  ASSERT_TRUE(loader.next().has_value());
  try {
    loader.next();
    FAIL() << "expected the worker's error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "augment: boom at batch 2");
  }
  EXPECT_FALSE(loader.next().has_value());
}

TEST(DataLoader, TransformRandomnessIsSeeded) {
  auto noisy = [](std::uint64_t seed, std::int64_t epoch) {
    DataLoader loader(indexed_split(12), 5, true, seed);
    loader.set_transform([](Batch& batch, shrink::Generator& gen) {
      float* x = batch.images.data<float>();
      for (std::int64_t i = 0; i < batch.images.numel(); ++i) x[i] += gen.next_double();
    });
    loader.start_epoch(epoch);
    std::vector<float> values;
    while (auto batch = loader.next())
      for (float v : batch->images.to_vector<float>()) values.push_back(v);
    return values;
  };
  EXPECT_EQ(noisy(1, 0), noisy(1, 0));
  EXPECT_NE(noisy(1, 0), noisy(1, 1));
}

TEST(DataLoader, RejectsBadArguments) {
  const Split split = indexed_split(4);
  EXPECT_THROW(DataLoader(split, 0, true, 0), Error);
  EXPECT_THROW(DataLoader(Split{split.images, Tensor::arange(3)}, 2, true, 0), Error);
  EXPECT_THROW(DataLoader(Split{split.images, split.labels.to(DType::Float32)}, 2, true, 0), Error);
  EXPECT_THROW(DataLoader(Split{}, 2, true, 0), Error);
  DataLoader loader(split, 2, true, 0);
  EXPECT_THROW(loader.start_epoch(-1), Error);
}

TEST(DataLoader, EmptySplitHasNoBatches) {
  DataLoader loader(Split{Tensor::empty({0, 2, 3}), Tensor::empty({0}, DType::Int64)}, 4, true, 0);
  EXPECT_EQ(loader.size(), 0);
  loader.start_epoch(0);
  EXPECT_FALSE(loader.next().has_value());
}

}  // namespace
