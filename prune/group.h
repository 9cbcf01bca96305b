// Prunable groups. A group is a set of (parameter, axis, block) slices that must lose the
// same indices together, plus where its channels live in the forward pass: the modules that
// produce them, the modules that consume them and what each consumer reads. Groups are the
// connected channel spaces of prune/trace.h, built from the modules' own channel
// declarations (nn::Module::channels) on one traced forward pass, never guessed.
//
// Which spaces are groups: those with a producer (a Linear or non-depthwise Conv2d writes
// them) whose channels neither are the model input nor reach the model output. Block-inner
// channels (conv1 -> bn1 -> relu -> conv2 in a ResNet block; the expansion of a MobileNetV2
// block, through its depthwise conv) have one producer and are groups by default. A residual
// stream (every conv writing into a ResNet stage's sum, its projection shortcut, the BNs,
// every conv reading from it) has several producers or meets itself in an add: a group only
// with GroupOptions::residual (--prune-residual), as the official i-SpaSP and PFP code prune
// block-inner channels only.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/shape.h"
#include "nn/module.h"
#include "prune/trace.h"

namespace shrink::prune {

// The input group (input-feature pruning, --prune-inputs) is the one group without a
// producer: its units are the model's input features, its members the first layer's weight
// columns ("1.weight", axis 1) and nothing else, its activation the layer that presents the
// input to the first layer (an nn::InputSelection, the mlp's Flatten "0", whose output is
// the model input as the first layer reads it), its consumer the first layer. Shrinking it
// also narrows that layer's input selection (prune/slice.h), so the model keeps taking
// whole samples.
struct Group {
  std::string name;        // the (first) producing module's path, e.g. "1"; kInputGroup for the input group
  std::int64_t size = 0;   // current number of units
  std::vector<Member> members;
  std::vector<std::string> producers;  // every module writing the channels, in call order
  std::vector<ConsumerRead> reads;     // every module reading them, and how (prune/trace.h)
  // The chain view, set when the group has one producer and every consumer reads the same
  // activation (the common case; the criteria that follow a group's channels through the
  // network need it):
  std::string producer;    // module creating the channels ("1": a Linear); empty for the input group
  std::string activation;  // module whose output holds the channels after elementwise layers ("2": ReLU)
  std::string consumer;    // the first module reading them ("3": the next Linear)
  bool residual = false;   // several producers, or channels that meet in an add (a residual stream)
  bool is_input() const { return producers.empty(); }
  bool is_chain() const { return !producer.empty() && !activation.empty(); }
  // Each current unit's index when the group was built; empty until shrink_group first cuts
  // it (identity). The consumer refit (prune/refit.h) reads it to match dense outputs.
  std::vector<std::int64_t> original;
};

inline constexpr const char* kInputGroup = "input";

struct GroupOptions {
  // The input group first (input-feature pruning): needs a feed-forward chain whose first
  // weighted layer is fed by an nn::InputSelection module, else refused naming why.
  bool inputs = false;
  bool residual = false;  // residual streams are groups too (see above)
};

// Groups of `model` traced on samples of `sample_shape`, input to output. The classifier's
// outputs never form a group. Throws shrink::Error naming the module when channels that a
// group would hold flow through a module that does not declare its channels, or through an
// op between modules the tracer does not know.
std::vector<Group> build_groups(nn::Module& model, const Shape& sample_shape, const GroupOptions& options = {});
// The same for a model whose first weighted layer is a Linear (the sample shape is its
// input width); other models are refused, asking for the sample shape.
std::vector<Group> build_groups(nn::Module& model, bool inputs = false);
// The sample shape build_groups(model, inputs) uses: {in_features} of the first Linear.
Shape infer_sample_shape(const nn::Module& model);

// The group as one of its consumers alone reads it: `read` its only read and `consumer` that
// layer. A residual stream has several consumers; the criteria and the refit that work on one
// consumer at a time (i-SpaSP, the consumer refit) take each of these views in call order.
Group consumer_view(const Group& group, const ConsumerRead& read);

// Units of a group, read from its first member's shape.
std::int64_t group_size(const nn::Module& model, const Group& group);

}  // namespace shrink::prune
