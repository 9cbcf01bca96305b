// Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), as torch.nn.Flatten() with start_dim = 1.
// With an input selection (nn/input_selection.h: the buffer "input_index", installed when
// input-feature pruning removes features), it then keeps only the indexed features:
// (N, features) -> (N, kept). Without one it is exactly torch's Flatten and holds no state.
#pragma once
#include "nn/input_selection.h"
#include "nn/module.h"

namespace shrink::nn {

class Flatten : public Module, public InputSelection {
 public:
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;
  // Channel c of a (N, C, H, W) input becomes features [c*H*W, (c+1)*H*W). With an input
  // selection the features no longer follow channels: opaque (the input group handles it).
  ChannelSpec channels() const override {
    return selects_inputs() ? ChannelSpec{} : ChannelSpec{ChannelSpec::Kind::Flatten, {}, {}};
  }

  bool selects_inputs() const override { return has_buffer(kInputIndex); }
  std::int64_t selected_from() const override;
  Tensor input_index() const override { return selects_inputs() ? buffer(kInputIndex) : Tensor(); }
  void select_inputs(Tensor index, std::int64_t features) override;
  void check_invariants() const override;

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  std::int64_t features_ = 0;  // per-sample features the selection reads from (no shape says it)
};

}  // namespace shrink::nn
