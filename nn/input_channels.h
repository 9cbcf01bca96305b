// InputChannels: the first child of every CNN builder, where input pruning (--prune-inputs)
// makes a convolutional model read only the input channels it kept while it is still fed whole
// images (nn/input_selection.h: the CNN counterpart of the mlp family's Flatten). Without a
// selection it returns its input unchanged and holds no tensor, so a dense model's state dict
// and checkpoint are as before; with one it keeps channels input_index (axis 1) of an
// (N, C, H, W) input.
#pragma once
#include "nn/input_selection.h"
#include "nn/module.h"

namespace shrink::nn {

class InputChannels : public Module, public InputSelection {
 public:
  std::string type_name() const override { return "InputChannels"; }
  std::string extra_repr() const override;
  // Channels pass through unchanged; with a selection they are renumbered: opaque (the input
  // group handles it, prune/group.h).
  ChannelSpec channels() const override {
    return selects_inputs() ? ChannelSpec{} : ChannelSpec{ChannelSpec::Kind::Elementwise, {}, {}};
  }

  bool selects_inputs() const override { return has_buffer(kInputIndex); }
  std::int64_t selected_from() const override;
  Tensor input_index() const override { return selects_inputs() ? buffer(kInputIndex) : Tensor(); }
  void select_inputs(Tensor index, std::int64_t channels) override;
  void check_invariants() const override;

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::int64_t channels_ = 0;  // channels the selection reads from (no shape says it)
};

}  // namespace shrink::nn
