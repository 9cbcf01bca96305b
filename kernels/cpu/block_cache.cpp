#include "kernels/cpu/block_cache.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace shrink::kernels::cpu {

BlockCache::~BlockCache() {
  for (auto& [size, p] : order_) std::free(p);
}

void* BlockCache::take(std::size_t size) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto [first, last] = by_size_.equal_range(size);
  if (first == last) return nullptr;
  const auto newest = std::prev(last);
  void* p = newest->second->second;
  order_.erase(newest->second);
  by_size_.erase(newest);
  cached_ -= size;
  return p;
}

void BlockCache::give(void* p, std::size_t size) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (size > capacity_) {
    std::free(p);
    return;
  }
  while (cached_ + size > capacity_) evict_oldest();
  order_.emplace_back(size, p);
  by_size_.emplace(size, std::prev(order_.end()));
  cached_ += size;
}

void BlockCache::evict_oldest() {
  const auto oldest = order_.begin();
  auto [first, last] = by_size_.equal_range(oldest->first);
  const auto entry = std::find_if(first, last, [&](const auto& e) { return e.second == oldest; });
  by_size_.erase(entry);  // equal sizes are kept in order given: this is `first`
  cached_ -= oldest->first;
  std::free(oldest->second);
  order_.erase(oldest);
}

std::size_t BlockCache::cached_bytes() {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_;
}

BlockCache& host_block_cache() {
  static BlockCache instance([] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    const std::size_t physical = pages > 0 && page > 0 ? std::size_t(pages) * std::size_t(page) : 0;
    return std::max<std::size_t>(std::size_t{2} << 30, physical / 4);
  }());
  return instance;
}

}  // namespace shrink::kernels::cpu
