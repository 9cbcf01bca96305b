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

struct Group {
  std::string name;        // the producing module's path, e.g. "1"
  std::int64_t size = 0;   // current number of units
  std::vector<Member> members;
  std::string producer;    // module creating the channels ("1": a Linear)
  std::string activation;  // module whose output holds the channels after elementwise layers ("2": ReLU)
  std::string consumer;    // module reading them ("3": the next Linear)
  // Each current unit's index when the group was built; empty until shrink_group first cuts
  // it (identity). The consumer refit (prune/refit.h) reads it to match dense outputs.
  std::vector<std::int64_t> original;
};

// Groups of a feed-forward chain (a Sequential of declared modules), input to output. The
// last Transform's outputs (the classifier) never form a group. Throws shrink::Error naming
// a module whose channels cannot be traced.
std::vector<Group> build_groups(const nn::Module& model);

// Units of a group, read from its first member's shape.
std::int64_t group_size(const nn::Module& model, const Group& group);

}  // namespace shrink::prune
