#include "nn/input_channels.h"

#include "core/ops.h"

namespace shrink::nn {

std::string InputChannels::extra_repr() const {
  if (!selects_inputs()) return "";
  return "channels=" + std::to_string(channels_) + ", kept=" + std::to_string(buffer(kInputIndex).size(0));
}

std::int64_t InputChannels::selected_from() const {
  SHRINK_CHECK(selects_inputs(), "InputChannels: no input selection is installed");
  return channels_;
}

void InputChannels::select_inputs(Tensor index, std::int64_t channels) {
  check_input_index(index, channels, kInputIndex);
  channels_ = channels;
  if (selects_inputs()) set_buffer(kInputIndex, std::move(index));
  else register_buffer(kInputIndex, std::move(index));
}

void InputChannels::check_invariants() const {
  if (selects_inputs()) check_input_index(buffer(kInputIndex), channels_, kInputIndex);
}

Tensor InputChannels::forward(const Tensor& x) {
  if (!selects_inputs()) return x;
  SHRINK_CHECK(x.dim() == 4 && x.size(1) == channels_, "InputChannels: the input selection reads ", channels_,
               " channels of an (N, C, H, W) input, got ", shape_str(x.shape()));
  const Tensor& index = buffer(kInputIndex);
  return index_select(x, 1, index.device() == x.device() ? index : index.to(x.device()));
}

}  // namespace shrink::nn
