#include "datasets/subset.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/ops.h"
#include "core/random.h"

namespace shrink::datasets {

namespace {
constexpr std::uint64_t kSubsetStream = 2;  // beside the loader's 0 (shuffle) and 1 (transforms)
}  // namespace

Split random_subset(const Split& split, std::int64_t n, std::uint64_t seed) {
  SHRINK_CHECK(n > 0 && n <= split.size(), "random_subset: ", n, " samples asked of a split of ", split.size(),
               " (must be in [1, ", split.size(), "])");
  Generator gen(derive_seed(seed, 0, kSubsetStream));
  std::vector<std::int64_t> order = sample_indices(split.size(), n, gen);
  std::sort(order.begin(), order.end());
  const Tensor idx = Tensor::from_vector(order, {n});
  return {index_select(split.images, 0, idx), index_select(split.labels, 0, idx)};
}

}  // namespace shrink::datasets
