#include "prune/group.h"

#include "core/error.h"
#include "nn/input_selection.h"
#include "nn/sequential.h"

namespace shrink::prune {

namespace {

using Kind = nn::Module::ChannelSpec::Kind;

std::string join(const std::string& path, const std::string& leaf) {
  return path.empty() ? leaf : path + "." + leaf;
}

// The input group: the first Transform's input axes, fed by the InputSelection module
// right before it.
Group input_group(const nn::Sequential& chain) {
  const nn::Module* previous = nullptr;
  std::string previous_name;
  for (const auto& [name, layer] : chain.named_children()) {
    const nn::Module::ChannelSpec spec = layer->channels();
    if (spec.kind != Kind::Transform) {
      previous = layer.get();
      previous_name = name;
      continue;
    }
    SHRINK_CHECK(previous != nullptr && dynamic_cast<const nn::InputSelection*>(previous) != nullptr,
                 "build_groups: input pruning needs a layer that can select input features right before "
                 "the first weighted layer '", name, "' (", layer->type_name(), "); this model has ",
                 previous ? previous->type_name() + " '" + previous_name + "'" : std::string("none"));
    Group g;
    g.name = kInputGroup;
    g.activation = previous_name;
    g.consumer = name;
    for (const auto& [tensor, axis] : spec.input_axes) g.members.push_back({join(name, tensor), axis});
    return g;
  }
  fail("build_groups: input pruning needs a weighted layer, and this ", chain.type_name(), " has none");
}

}  // namespace

std::vector<Group> build_groups(const nn::Module& model, bool inputs) {
  const auto* chain = dynamic_cast<const nn::Sequential*>(&model);
  SHRINK_CHECK(chain != nullptr, "build_groups: the model is a ", model.type_name(),
               "; channel tracing supports feed-forward chains (Sequential)");
  std::vector<Group> groups;
  if (inputs) groups.push_back(input_group(*chain));
  Group open;  // channels produced and not yet consumed
  bool is_open = false;
  for (const auto& [name, layer] : chain->named_children()) {
    const nn::Module::ChannelSpec spec = layer->channels();
    switch (spec.kind) {
      case Kind::Transform:
        if (is_open) {
          for (const auto& [tensor, axis] : spec.input_axes) open.members.push_back({join(name, tensor), axis});
          open.consumer = name;
          groups.push_back(open);
        }
        open = Group{};
        open.name = open.producer = open.activation = name;
        for (const auto& [tensor, axis] : spec.output_axes) open.members.push_back({join(name, tensor), axis});
        is_open = true;
        break;
      case Kind::Elementwise:
        if (is_open) {
          for (const auto& [tensor, axis] : spec.output_axes) open.members.push_back({join(name, tensor), axis});
          open.activation = name;
        }
        break;
      case Kind::Opaque:
        SHRINK_CHECK(!is_open, "build_groups: cannot trace the channels of layer '", open.producer,
                     "' through layer '", name, "' (", layer->type_name(),
                     "), which does not declare how it maps channels");
        break;
    }
  }
  // What is still open feeds the model's output (the classifier): never pruned.
  for (Group& g : groups) g.size = group_size(model, g);
  return groups;
}

std::int64_t group_size(const nn::Module& model, const Group& group) {
  SHRINK_CHECK(!group.members.empty(), "group_size: group '", group.name, "' has no members");
  const Member& m = group.members.front();
  const Tensor& t = model.has_parameter(m.tensor) ? model.parameter(m.tensor) : model.buffer(m.tensor);
  return t.size(m.axis);
}

}  // namespace shrink::prune
