// Prunable groups. A group is a set of (parameter, axis) slices that must lose the same
// indices together, plus where its channels live in the forward pass: the module that
// produces them, the module whose output is the group's activation (after any elementwise
// layers), and the module that consumes them. Groups are built from the modules' own
// channel declarations (nn::Module::channels), never guessed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.h"

namespace shrink::prune {

struct Member {
  std::string tensor;  // dotted parameter or buffer name, e.g. "1.weight"
  int axis;            // the axis indexed by the group's units
  bool operator==(const Member& o) const { return tensor == o.tensor && axis == o.axis; }
};

// The input group (input-feature pruning, --prune-inputs) is the one group without a
// producer: its units are the model's input features, its members the first layer's weight
// columns ("1.weight", axis 1) and nothing else, its activation the layer that presents the
// input to the first layer (an nn::InputSelection, the mlp's Flatten "0", whose output is
// the model input as the first layer reads it), its consumer the first layer. Shrinking it
// also narrows that layer's input selection (prune/slice.h), so the model keeps taking
// whole samples.
struct Group {
  std::string name;        // the producing module's path, e.g. "1"; kInputGroup for the input group
  std::int64_t size = 0;   // current number of units
  std::vector<Member> members;
  std::string producer;    // module creating the channels ("1": a Linear); empty for the input group
  std::string activation;  // module whose output holds the channels after elementwise layers ("2": ReLU)
  std::string consumer;    // module reading them ("3": the next Linear)
  bool is_input() const { return producer.empty(); }
  // Each current unit's index when the group was built; empty until shrink_group first cuts
  // it (identity). The consumer refit (prune/refit.h) reads it to match dense outputs.
  std::vector<std::int64_t> original;
};

inline constexpr const char* kInputGroup = "input";

// Groups of a feed-forward chain (a Sequential of declared modules), input to output. The
// last Transform's outputs (the classifier) never form a group. With `inputs`, the input
// group comes first; a model whose first layer is not fed by an nn::InputSelection module
// (or that has no weighted layer) is refused naming why. Throws shrink::Error naming a
// module whose channels cannot be traced.
std::vector<Group> build_groups(const nn::Module& model, bool inputs = false);

// Units of a group, read from its first member's shape.
std::int64_t group_size(const nn::Module& model, const Group& group);

}  // namespace shrink::prune
