// Transformed filters kept across calls (kernels/cpu/filter_cache.h).
#include "kernels/cpu/filter_cache.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <tuple>

namespace shrink::kernels::cpu {
namespace {

struct Entry {
  std::vector<float> weights;  // the weights U was computed from
  float* u = nullptr;          // 64-byte aligned
  std::int64_t u_floats = 0;
  explicit Entry(std::int64_t floats) : u_floats(floats) {
    const std::size_t bytes = (static_cast<std::size_t>(std::max<std::int64_t>(floats, 1)) * sizeof(float) + 63) &
                              ~std::size_t{63};
    u = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (u == nullptr) throw std::bad_alloc();
  }
  ~Entry() { std::free(u); }
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;
  std::int64_t bytes() const { return static_cast<std::int64_t>((weights.size() + u_floats) * sizeof(float)); }
};

using Key = std::tuple<int, const float*, std::int64_t, std::int64_t, std::int64_t>;

struct Slot {
  std::shared_ptr<Entry> entry;
  std::uint64_t last_use = 0;
};

std::int64_t budget_from_environment() {
  constexpr std::int64_t kDefaultMiB = 256;
  const char* v = std::getenv("SHRINK_FILTER_CACHE_MB");
  if (v == nullptr || *v == '\0') return kDefaultMiB << 20;
  char* end = nullptr;
  const long long mib = std::strtoll(v, &end, 10);
  if (end == v || *end != '\0' || mib < 0) return kDefaultMiB << 20;  // unreadable: the default
  return static_cast<std::int64_t>(mib) << 20;
}

struct Cache {
  std::mutex mutex;
  std::map<Key, Slot> slots;
  std::int64_t bytes = 0;
  std::int64_t budget = budget_from_environment();
  std::uint64_t clock = 0;

  void erase(std::map<Key, Slot>::iterator it) {
    bytes -= it->second.entry->bytes();
    slots.erase(it);
  }
  // Least recently used first, never `keep`, until the entries fit the budget.
  void shrink_to_budget(const Key* keep) {
    while (bytes > budget) {
      auto oldest = slots.end();
      for (auto it = slots.begin(); it != slots.end(); ++it)
        if ((keep == nullptr || it->first != *keep) &&
            (oldest == slots.end() || it->second.last_use < oldest->second.last_use))
          oldest = it;
      if (oldest == slots.end()) return;
      erase(oldest);
    }
  }
};

Cache& cache() {
  static Cache c;
  return c;
}

thread_local int t_bypass = 0;  // FilterCacheBypass guards alive on this thread

bool same_weights(const Entry& e, const float* w, std::int64_t w_floats) {
  return static_cast<std::int64_t>(e.weights.size()) == w_floats &&
         std::memcmp(e.weights.data(), w, static_cast<std::size_t>(w_floats) * sizeof(float)) == 0;
}

}  // namespace

const float* transformed_filters(const FilterKey& key, std::int64_t u_floats, float* scratch, FillFilters fill,
                                 FilterHold& hold) {
  if (t_bypass > 0) {
    fill(scratch);
    return scratch;
  }
  Cache& c = cache();
  const Key k{static_cast<int>(key.kind), key.w, key.w_floats, key.c_in, key.c_out};
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.slots.find(k);
  if (it != c.slots.end()) {
    Slot& slot = it->second;
    if (slot.entry->u_floats == u_floats) {
      slot.last_use = ++c.clock;
      if (!same_weights(*slot.entry, key.w, key.w_floats)) {  // stale: the weights at this address changed
        if (slot.entry.use_count() > 1) slot.entry = std::make_shared<Entry>(u_floats);  // another call reads it
        // (else its buffers are reused: a training step changes every weight, and a new U a step
        // would be page-faulted in again)
        slot.entry->weights.assign(key.w, key.w + key.w_floats);
        fill(slot.entry->u);
      }
      hold.keep(slot.entry);
      return slot.entry->u;
    }
    c.erase(it);
  }
  const std::int64_t need = (key.w_floats + u_floats) * static_cast<std::int64_t>(sizeof(float));
  if (need > c.budget) {  // too big to keep (or the cache is off): computed for this call only
    fill(scratch);
    return scratch;
  }
  auto entry = std::make_shared<Entry>(u_floats);
  entry->weights.assign(key.w, key.w + key.w_floats);
  fill(entry->u);
  c.bytes += entry->bytes();
  c.slots[k] = Slot{entry, ++c.clock};
  c.shrink_to_budget(&k);
  hold.keep(entry);
  return entry->u;
}

FilterCacheBypass::FilterCacheBypass() { ++t_bypass; }
FilterCacheBypass::~FilterCacheBypass() { --t_bypass; }

void clear_filter_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.slots.clear();
  c.bytes = 0;
}

std::int64_t filter_cache_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.bytes;
}

std::int64_t filter_cache_budget() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.budget;
}

void set_filter_cache_budget(std::int64_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.budget = std::max<std::int64_t>(bytes, 0);
  c.shrink_to_budget(nullptr);
}

}  // namespace shrink::kernels::cpu
