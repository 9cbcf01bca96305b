// Transformed filters kept from one call to the next. Inference runs the same weights batch after
// batch, and a Winograd convolution transforms every filter (36 values for 9) once per call,
// whatever the batch: 3% of a block-inner pruned ResNet-20's batch of 64 at 2 threads, done on
// the calling thread while the others wait, and most of a call at batch 1.
//
// An entry is found by the transform's kind, the weights' address and the shape the transform
// depends on, and used only while the weights are bit for bit those it was computed from: a copy
// of them is kept and compared on every call, so weights updated in place (an optimizer step) or
// another tensor allocated at the same address compute the transform again. Nothing else can
// go stale: the entry holds the whole input of the transform.
//
// Process-wide, behind a mutex; past a byte budget the least recently used entries are dropped
// (an entry in use by a call stays alive until that call ends). The budget is
// SHRINK_FILTER_CACHE_MB (MiB, default 256; 0 turns the cache off), read once.
#pragma once
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

namespace shrink::kernels::cpu {

enum class FilterTransform : int { WinogradPanels = 1, WinogradChannelsLast = 2 };

struct FilterKey {
  FilterTransform kind;
  const float* w = nullptr;   // the weights the transform reads
  std::int64_t w_floats = 0;  // how many
  std::int64_t c_in = 0, c_out = 0;  // with w_floats, what the transform's layout depends on
};

// Keeps the cache entries a call reads alive until the call ends (the first few without a heap
// allocation: at batch 1 a pruned ResNet-20's convolutions take microseconds).
class FilterHold {
 public:
  void keep(std::shared_ptr<const void> entry) {
    if (inline_count_ < kInline)
      inline_[inline_count_++] = std::move(entry);
    else
      more_.push_back(std::move(entry));
  }

 private:
  static constexpr int kInline = 2;
  std::shared_ptr<const void> inline_[kInline];
  int inline_count_ = 0;
  std::vector<std::shared_ptr<const void>> more_;
};

// A borrowed callable `void(float* u)` (no copy, no allocation; it must outlive the call).
class FillFilters {
 public:
  template <class F>  // implicit: callers pass a lambda, alive until the full expression ends
  FillFilters(F&& f)  // NOLINT
      : f_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* g, float* u) { (*static_cast<std::remove_reference_t<F>*>(g))(u); }) {}
  void operator()(float* u) const { call_(f_, u); }

 private:
  void* f_;
  void (*call_)(void*, float*);
};

// The transform of key.w (u_floats floats, 64-byte aligned): the cached one when it was computed
// from the same weights, else fill(u) into a new entry, or into `scratch` (u_floats floats) where
// an entry would not fit the budget.
const float* transformed_filters(const FilterKey& key, std::int64_t u_floats, float* scratch, FillFilters fill,
                                 FilterHold& hold);

// While one lives, this thread's calls keep nothing and compute every transform into their
// scratch: for transforms of weights made for one call (backward-input's flipped filters).
class FilterCacheBypass {
 public:
  FilterCacheBypass();
  ~FilterCacheBypass();
  FilterCacheBypass(const FilterCacheBypass&) = delete;
  FilterCacheBypass& operator=(const FilterCacheBypass&) = delete;
};

// For tests and tools: drop every entry; the bytes the entries take; the budget (bytes) and
// setting it (the environment variable's value is the default).
void clear_filter_cache();
std::int64_t filter_cache_bytes();
std::int64_t filter_cache_budget();
void set_filter_cache_budget(std::int64_t bytes);

}  // namespace shrink::kernels::cpu
