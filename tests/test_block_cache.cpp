// kernels/cpu/block_cache.h: idle host blocks reused by exact size, newest first, the oldest
// freed past the capacity.
#include <gtest/gtest.h>

#include <cstdlib>

#include "kernels/cpu/block_cache.h"

using shrink::kernels::cpu::BlockCache;

namespace {
constexpr std::size_t kMiB = std::size_t{1} << 20;
void* block(std::size_t size) { return std::malloc(size); }
}  // namespace

TEST(BlockCache, HandsOutTheNewestBlockOfTheExactSize) {
  BlockCache cache(16 * kMiB);
  EXPECT_EQ(cache.take(kMiB), nullptr);
  void* a = block(kMiB);
  void* b = block(kMiB);
  void* c = block(2 * kMiB);
  cache.give(a, kMiB);
  cache.give(c, 2 * kMiB);
  cache.give(b, kMiB);
  EXPECT_EQ(cache.cached_bytes(), 4 * kMiB);
  EXPECT_EQ(cache.take(3 * kMiB), nullptr) << "no block of that size";
  EXPECT_EQ(cache.take(kMiB), b);
  EXPECT_EQ(cache.take(kMiB), a);
  EXPECT_EQ(cache.take(kMiB), nullptr);
  EXPECT_EQ(cache.take(2 * kMiB), c);
  EXPECT_EQ(cache.cached_bytes(), 0u);
  for (void* p : {a, b, c}) std::free(p);
}

TEST(BlockCache, PastItsCapacityTheOldestGo) {
  BlockCache cache(3 * kMiB);
  void* x = block(2 * kMiB);
  void* y = block(kMiB);
  void* z = block(2 * kMiB);
  cache.give(x, 2 * kMiB);
  cache.give(y, kMiB);
  cache.give(z, 2 * kMiB);  // x, the oldest, is freed to make room
  EXPECT_EQ(cache.cached_bytes(), 3 * kMiB);
  EXPECT_EQ(cache.take(2 * kMiB), z);
  EXPECT_EQ(cache.take(2 * kMiB), nullptr) << "the oldest block should have been freed";
  EXPECT_EQ(cache.take(kMiB), y);
  void* big = block(4 * kMiB);
  cache.give(big, 4 * kMiB);  // larger than the whole capacity: freed at once
  EXPECT_EQ(cache.cached_bytes(), 0u);
  EXPECT_EQ(cache.take(4 * kMiB), nullptr);
  std::free(z);
  std::free(y);
}

TEST(BlockCache, EvictsInOrderGivenAcrossManySizes) {
  BlockCache cache(10 * kMiB);
  void* blocks[8];
  for (int i = 0; i < 8; ++i) cache.give(blocks[i] = block(std::size_t(1 + i % 3) * kMiB), std::size_t(1 + i % 3) * kMiB);
  // Sizes 1,2,3,1,2,3,1,2 MiB into 10: giving blocks[5] freed blocks[0] and [1], giving
  // blocks[7] freed blocks[2]; blocks[3..7] (9 MiB) stay.
  EXPECT_EQ(cache.cached_bytes(), 9 * kMiB);
  EXPECT_EQ(cache.take(2 * kMiB), blocks[7]);
  EXPECT_EQ(cache.take(kMiB), blocks[6]);
  EXPECT_EQ(cache.take(3 * kMiB), blocks[5]);
  EXPECT_EQ(cache.take(2 * kMiB), blocks[4]);
  EXPECT_EQ(cache.take(kMiB), blocks[3]);
  EXPECT_EQ(cache.take(kMiB), nullptr);
  EXPECT_EQ(cache.take(3 * kMiB), nullptr) << "blocks[2] should have been freed";
  EXPECT_EQ(cache.cached_bytes(), 0u);
  for (int i = 3; i < 8; ++i) std::free(blocks[i]);
}
