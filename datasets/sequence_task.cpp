#include "datasets/sequence_task.h"

#include <algorithm>
#include <array>
#include <random>
#include <vector>

#include "core/error.h"

namespace shrink::datasets {

namespace {

constexpr std::int64_t kMarkers = 8, kFirstMarker = 2, kFirstDistractor = kFirstMarker + kMarkers, kVocab = 32;

// n draws of one split into ids (n, 1 + max_tokens) and labels (n).
Split draw_split(std::int64_t n, const MajorityTaskOptions& o, std::mt19937_64& rng) {
  // Raw 64-bit draws reduced by modulo: the bias is below 2^-58, and unlike
  // std::uniform_int_distribution the stream is the same with every standard library.
  const auto below = [&rng](std::int64_t k) { return static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(k)); };
  const std::int64_t width = 1 + o.max_tokens;
  std::vector<std::int64_t> ids(static_cast<size_t>(n * width), kPadId), labels(static_cast<size_t>(n));
  for (std::int64_t s = 0; s < n; ++s) {
    std::int64_t* row = ids.data() + s * width;
    for (;;) {
      const std::int64_t length = o.min_tokens + below(o.max_tokens - o.min_tokens + 1);
      std::array<std::int64_t, kMarkers> counts{};
      row[0] = kClsId;
      for (std::int64_t t = 1; t <= length; ++t) {
        if (below(2) == 0) {
          const std::int64_t m = below(kMarkers);
          ++counts[m];
          row[t] = kFirstMarker + m;
        } else {
          row[t] = kFirstDistractor + below(kVocab - kFirstDistractor);
        }
      }
      std::fill(row + length + 1, row + width, kPadId);
      const auto top = std::max_element(counts.begin(), counts.end());
      if (std::count(counts.begin(), counts.end(), *top) == 1) {
        labels[s] = top - counts.begin();
        break;
      }
    }
  }
  return {Tensor::from_vector(ids, {n, width}), Tensor::from_vector(labels, {n})};
}

}  // namespace

Dataset majority_task(const MajorityTaskOptions& o) {
  SHRINK_CHECK(o.train > 0 && o.test > 0 && o.min_tokens >= 1 && o.max_tokens >= o.min_tokens,
               "majority task: bad sizes (train ", o.train, ", test ", o.test, ", tokens ", o.min_tokens, "..",
               o.max_tokens, ")");
  std::mt19937_64 rng(o.seed);
  Dataset ds;
  ds.name = "majority";
  ds.source = "generated (datasets/sequence_task.h)";
  ds.train = draw_split(o.train, o, rng);
  ds.test = draw_split(o.test, o, rng);
  ds.num_classes = kMarkers;
  ds.vocab_size = kVocab;
  ds.sample_shape = ds.stored_shape = {1 + o.max_tokens};
  return ds;
}

}  // namespace shrink::datasets
