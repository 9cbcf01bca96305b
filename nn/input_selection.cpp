#include "nn/input_selection.h"

#include <vector>

#include "core/error.h"

namespace shrink::nn {

void check_input_index(const Tensor& index, std::int64_t features, const std::string& what) {
  SHRINK_CHECK(index.defined(), what, ": the input index is undefined");
  SHRINK_CHECK(index.dtype() == DType::Int64, what, ": an input index must be int64, got ",
               dtype_name(index.dtype()));
  SHRINK_CHECK(index.dim() == 1 && index.size(0) >= 1, what, ": an input index must be 1-D and "
               "non-empty (at least one input feature is kept), got shape ", shape_str(index.shape()));
  SHRINK_CHECK(features >= 1, what, ": the input has ", features, " features");
  SHRINK_CHECK(index.size(0) <= features, what, ": ", index.size(0), " indices select from only ",
               features, " features");
  const std::vector<std::int64_t> v = index.to(Device::cpu()).to_vector<std::int64_t>();
  for (std::size_t i = 0; i < v.size(); ++i) {
    SHRINK_CHECK(v[i] >= 0 && v[i] < features, what, ": entry ", i, " is ", v[i],
                 ", outside the input's ", features, " features [0, ", features, ")");
    SHRINK_CHECK(i == 0 || v[i] > v[i - 1], what, ": entries must be sorted and unique, but entry ", i,
                 " (", v[i], ") follows ", v[i - 1]);
  }
}

}  // namespace shrink::nn
