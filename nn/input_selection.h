// Input-feature selection: how a pruned model reads only the input features it kept while
// it is still fed whole samples (full images), so that shrink-eval, fine-tuning and
// shrink-train need to know nothing about it.
//
// The choice: the selection belongs to the layer that presents the input to the first
// weighted layer, as an optional int64 buffer "input_index" (sorted, unique, in range) on
// that layer. In the mlp family that layer is the Flatten at child "0": it flattens each
// sample to its `features` values and then keeps the indexed ones, so the pruned model's
// first Linear ("1.weight", now (out, kept)) sees exactly the features it has columns for.
// Nothing is renamed: every parameter keeps its name, a dense model has no such buffer (its
// state dict and checkpoint are as before), and the buffer "0.input_index" is the only new
// entry a pruned model's checkpoint holds. The model spec (nn/models.h) records which
// layer selects and from how many features ("inputs": {"0": {"features": 784}}), since no
// tensor shape says the full width.
//
// Why not a buffer on the first Linear: pruning criteria (Taylor, i-SpaSP, GFS, PFP) read a
// group's channels as the output of one module and feed them to its consumer; with the
// selection ahead of the consumer, the input group's activation is that module's output
// and every criterion works on it unchanged. The CNN builders put an InputChannels first
// (nn/input_channels.h: channels on axis 1) and get their input-channel group the same way
// (prune/group.h: the first weighted leaf, however deeply nested, and the leaf before it).
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace shrink::nn {

inline constexpr const char* kInputIndex = "input_index";

// A module that can present a subset of its input's features to the layer after it.
class InputSelection {
 public:
  virtual ~InputSelection() = default;
  // True once a selection is installed.
  virtual bool selects_inputs() const = 0;
  // Features the module is fed per sample (all of them, selected or not); needs a selection.
  virtual std::int64_t selected_from() const = 0;
  // The kept feature indices (int64, 1-D, sorted), or an undefined tensor without selection.
  virtual Tensor input_index() const = 0;
  // Installs or replaces the selection: `index` (int64, 1-D, sorted, unique, each in
  // [0, features)) out of `features` per sample. Throws naming the problem.
  virtual void select_inputs(Tensor index, std::int64_t features) = 0;
};

// Throws shrink::Error naming `what` (a tensor name) unless `index` is a non-empty int64
// 1-D tensor of strictly increasing values in [0, features).
void check_input_index(const Tensor& index, std::int64_t features, const std::string& what);

}  // namespace shrink::nn
