#include "prune/group.h"

#include "core/error.h"
#include "nn/input_channels.h"
#include "nn/input_selection.h"
#include "nn/linear.h"
#include "nn/sequential.h"

namespace shrink::prune {

namespace {

using Kind = nn::Module::ChannelSpec::Kind;

std::string join(const std::string& path, const std::string& leaf) {
  return path.empty() ? leaf : path + "." + leaf;
}

// The input group: the input axes of the first weighted layer (the first Transform leaf in
// module order), fed by the InputSelection leaf right before it (a Flatten in the mlp family,
// the InputChannels child of the CNN builders).
Group input_group(const nn::Module& model) {
  const nn::Module* previous = nullptr;
  std::string previous_name;
  for (const auto& [name, layer] : model.named_modules()) {
    if (!layer->named_children().empty()) continue;  // containers: their leaves follow
    const nn::Module::ChannelSpec spec = layer->channels();
    if (spec.kind != Kind::Transform) {
      previous = layer;
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
    g.reads.push_back({name, previous_name, {}, false, 1, ""});
    return g;
  }
  fail("build_groups: input pruning needs a weighted layer, and this ", model.type_name(), " has none");
}

// The chain view of a group (prune/group.h): one producer, every consumer reading the
// same activation.
void set_chain_view(Group& g) {
  g.consumer = g.reads.empty() ? "" : g.reads.front().consumer;
  if (g.producers.size() != 1 || g.residual) return;
  g.producer = g.producers.front();
  const std::string& activation = g.reads.empty() ? "" : g.reads.front().activation;
  for (const ConsumerRead& r : g.reads)
    if (r.activation != activation || r.activation.empty()) return;
  g.activation = activation;
}

// The groups modules declare themselves (nn::Module::declared_groups: attention heads, a
// transformer's FFN neurons), in module order, with paths from the model's root.
std::vector<Group> declared_groups(const nn::Module& model) {
  std::vector<Group> groups;
  for (const auto& [path, module] : model.named_modules())
    for (const nn::Module::DeclaredGroup& d : module->declared_groups()) {
      const auto full = [&path = path](const std::string& leaf) { return leaf.empty() ? leaf : join(path, leaf); };
      Group g;
      g.name = full(d.name);
      for (const auto& m : d.members) g.members.push_back({full(m.tensor), m.axis, m.block});
      for (const auto& p : d.producers) g.producers.push_back(full(p));
      ConsumerRead read{full(d.consumer), full(d.activation), {}, !d.activation.empty(), d.block, ""};
      for (const auto& p : d.path) read.path.push_back(full(p));
      g.reads.push_back(read);
      set_chain_view(g);
      groups.push_back(std::move(g));
    }
  return groups;
}

}  // namespace

std::vector<Group> build_groups(nn::Module& model, const Shape& sample_shape, const GroupOptions& options) {
  // A model with declared groups (a transformer) is pruned by them: its heads and FFN neurons.
  if (std::vector<Group> declared = declared_groups(model); !declared.empty()) {
    SHRINK_CHECK(!options.inputs && !options.residual, "build_groups: this ", model.type_name(),
                 " is pruned by the groups its layers declare (attention heads, FFN neurons); input-feature and "
                 "residual-stream pruning apply to feed-forward chains and CNNs");
    for (Group& g : declared) g.size = group_size(model, g);
    return declared;
  }
  const ChannelTrace trace = trace_channels(model, sample_shape);
  std::vector<Group> groups;
  if (options.inputs) groups.push_back(input_group(model));
  for (const ChannelSpace& space : trace.spaces) {
    if (space.producers.empty() || space.model_input || space.reaches_output) continue;
    SHRINK_CHECK(space.opaque.empty(), "build_groups: cannot trace the channels of layer '", space.producers.front(),
                 "' through layer ", space.opaque, ", which does not declare how it maps channels");
    if (space.reads.empty()) continue;  // written and never read: nothing downstream to shrink
    Group g;
    g.name = space.producers.front();
    g.members = space.members;
    g.producers = space.producers;
    g.reads = space.reads;
    g.residual = space.through_add || space.producers.size() > 1;
    if (g.residual && !options.residual) continue;
    set_chain_view(g);
    groups.push_back(std::move(g));
  }
  for (Group& g : groups) g.size = group_size(model, g);
  return groups;
}

Shape infer_sample_shape(const nn::Module& model) {
  for (const auto& [path, module] : model.named_modules()) {
    if (!module->named_children().empty()) continue;
    if (dynamic_cast<const nn::InputChannels*>(module)) continue;  // a CNN: its first conv says so below
    if (const auto* selecting = dynamic_cast<const nn::InputSelection*>(module))
      if (selecting->selects_inputs()) return {selecting->selected_from()};  // fed whole samples
    if (const auto* linear = dynamic_cast<const nn::Linear*>(module)) return {linear->in_features()};
    if (module->channels().kind == nn::Module::ChannelSpec::Kind::Transform)
      fail("build_groups: the first weighted layer of this ", model.type_name(), " is '", path, "' (",
           module->type_name(), "); pass the sample shape to trace its channels");
  }
  fail("build_groups: this ", model.type_name(), " has no weighted layer whose channels could be traced");
}

std::vector<Group> build_groups(nn::Module& model, bool inputs) {
  return build_groups(model, infer_sample_shape(model), GroupOptions{inputs, false});
}

Group consumer_view(const Group& group, const ConsumerRead& read) {
  Group one = group;
  one.reads = {read};
  one.consumer = read.consumer;
  return one;
}

std::int64_t group_size(const nn::Module& model, const Group& group) {
  SHRINK_CHECK(!group.members.empty(), "group_size: group '", group.name, "' has no members");
  const Member& m = group.members.front();
  const Tensor& t = model.has_parameter(m.tensor) ? model.parameter(m.tensor) : model.buffer(m.tensor);
  return t.size(m.axis) / m.block;  // a head is head_dim rows
}

}  // namespace shrink::prune
