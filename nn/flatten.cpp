#include "nn/flatten.h"

#include "core/ops.h"

namespace shrink::nn {

std::string Flatten::extra_repr() const {
  if (!selects_inputs()) return "";
  return "features=" + std::to_string(features_) + ", kept=" + std::to_string(buffer(kInputIndex).size(0));
}

std::int64_t Flatten::selected_from() const {
  SHRINK_CHECK(selects_inputs(), "Flatten: no input selection is installed");
  return features_;
}

void Flatten::select_inputs(Tensor index, std::int64_t features) {
  check_input_index(index, features, kInputIndex);
  features_ = features;
  if (selects_inputs()) set_buffer(kInputIndex, std::move(index));
  else register_buffer(kInputIndex, std::move(index));
}

void Flatten::check_invariants() const {
  if (selects_inputs()) check_input_index(buffer(kInputIndex), features_, kInputIndex);
}

Tensor Flatten::forward(const Tensor& x) {
  SHRINK_CHECK(x.dim() >= 1, "Flatten: input needs a batch axis, got shape ", shape_str(x.shape()));
  const Tensor flat = x.dim() == 2 ? x : flatten(x, 1);
  if (!selects_inputs()) return flat;
  SHRINK_CHECK(flat.dim() == 2 && flat.size(1) == features_, "Flatten: the input selection reads ", features_,
               " features per sample, got input ", shape_str(x.shape()));
  const Tensor& index = buffer(kInputIndex);
  return index_select(flat, 1, index.device() == flat.device() ? index : index.to(flat.device()));
}

}  // namespace shrink::nn
