#include "prune/calibration.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/ops.h"

namespace shrink::prune {

Calibration sample_calibration(const Tensor& inputs, const Tensor& labels, std::int64_t n, Generator& gen,
                               Device device) {
  SHRINK_CHECK(inputs.defined() && inputs.dim() >= 1 && labels.defined() && labels.dim() == 1 &&
                   labels.size(0) == inputs.size(0),
               "sample_calibration: inputs (N, ...) and labels (N) must have the same N");
  SHRINK_CHECK(n > 0, "sample_calibration: the sample count must be positive, got ", n);
  const std::int64_t total = inputs.size(0);
  SHRINK_CHECK(total > 0, "sample_calibration: the data set is empty");
  n = std::min(n, total);
  const std::vector<std::int64_t> order = sample_indices(total, n, gen);
  const Tensor idx = Tensor::from_vector(order, {n});
  return {index_select(inputs, 0, idx).to(device), index_select(labels, 0, idx).to(device)};
}

}  // namespace shrink::prune
