// Idle host blocks kept for reuse (kernels/cpu/memory.cpp). A training step or a pruning
// pass allocates the same sizes again and again; handing each block back to the OS would make
// every reuse pay a page fault per fresh page. With idle blocks capped at 2 GiB and the newest
// ones refused past it, a MobileNetV2 Taylor pruning job (bench_prune, batch 256) took 3.6M
// page faults; with this cache 1.56M (its first pass's footprint) and ran 1.37x faster.
// Blocks are matched by exact size, the most recently freed first (its lines may still be in
// the caches); past the capacity the least recently freed go back to the OS.
#pragma once
#include <cstddef>
#include <list>
#include <map>
#include <mutex>
#include <utility>

namespace shrink::kernels::cpu {

class BlockCache {
 public:
  explicit BlockCache(std::size_t capacity_bytes) : capacity_(capacity_bytes) {}
  ~BlockCache();  // frees every idle block
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // An idle block of exactly `size` bytes (the most recently given), or null.
  void* take(std::size_t size);
  // Keeps `p` (from malloc or posix_memalign, `size` bytes) idle, first freeing the oldest idle
  // blocks until it fits; a block larger than the whole capacity is freed at once.
  void give(void* p, std::size_t size);
  std::size_t cached_bytes();

 private:
  using Order = std::list<std::pair<std::size_t, void*>>;  // oldest first
  void evict_oldest();  // mutex held

  std::mutex mutex_;
  Order order_;
  std::multimap<std::size_t, Order::iterator> by_size_;  // equal sizes in the order given
  std::size_t cached_ = 0;
  const std::size_t capacity_;
};

// The process's cache: idle blocks up to a quarter of physical memory, at least 2 GiB.
BlockCache& host_block_cache();

}  // namespace shrink::kernels::cpu
