#include "prune/trace.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <unordered_map>

#include "core/autograd.h"
#include "core/error.h"
#include "core/shape_only.h"
#include "core/tensor.h"

namespace shrink::prune {

namespace {

using Kind = nn::Module::ChannelSpec::Kind;

std::string join(const std::string& path, const std::string& leaf) {
  return path.empty() ? leaf : path + "." + leaf;
}

// Channels of an activation: axis 1 of an (N, C, ...) map, the last axis of (N, m).
std::int64_t channel_count(const Tensor& t) { return t.dim() >= 3 ? t.size(1) : t.size(t.dim() - 1); }

// Ops that map channel c to channel c elementwise (or per channel, as pools do).
bool per_channel_op(const std::string& op) {
  static const std::set<std::string> ops = {
      "relu", "relu6", "gelu", "tanh", "sigmoid", "exp", "log", "sqrt", "pow", "abs", "square", "neg",
      "add_scalar", "mul_scalar", "dropout", "to", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"};
  return ops.count(op) > 0;
}

bool binary_elementwise_op(const std::string& op) {
  return op == "add" || op == "sub" || op == "mul" || op == "div" || op == "add_relu";
}

// A value flowing between modules: its channel space and how it got there.
struct Value {
  int space = -1;
  std::int64_t block = 1;
  std::string activation;          // module whose (unflattened) output this is
  std::vector<std::string> path;   // elementwise modules since the producer
  bool foldable = true;            // path is the whole story since one producer
  std::string made_by;             // leaf module that returned exactly this tensor ("" for an op)
};

struct RawSpace {
  ChannelSpace info;
  int first_producer_call = -1;  // order of appearance, for sorting
};

class Tracer {
 public:
  explicit Tracer(nn::Module& model) : model_(model) {}

  ChannelTrace run(const Shape& sample_shape) {
    std::vector<std::pair<std::string, nn::Module*>> leaves;
    for (auto& [path, module] : model_.named_modules())
      if (module->named_children().empty()) leaves.emplace_back(path, module);
    std::vector<nn::HookHandle> hooks;
    for (auto& [path, module] : leaves)
      hooks.push_back(module->register_forward_hook(
          [this, path = path](nn::Module& m, const Tensor& in, Tensor& out) { on_call(path, m, in, out); }));

    Shape batch{1};  // eval mode: one sample traces every shape
    batch.insert(batch.end(), sample_shape.begin(), sample_shape.end());
    const Device device = first_device();
    Tensor x = Tensor::zeros(batch, DType::Float32, device);
    x.requires_grad_(true);
    keep_.push_back(x);
    const int input_space = new_space(channel_count(x));
    spaces_[input_space].info.model_input = true;
    spaces_[input_space].first_producer_call = -1;
    values_[x.impl()] = Value{input_space, 1, "", {}, true, ""};

    const bool was_training = model_.is_training();
    model_.eval();
    Tensor y;
    try {
      EnableGradGuard grad;
      KeepGraphInputsGuard inputs;  // value_of walks the graph by its nodes' input tensors
      ShapeOnlyGuard shapes;        // the graph and the shapes are all a trace reads
      y = model_(x);
    } catch (...) {
      model_.train(was_training);
      throw;
    }
    model_.train(was_training);
    hooks.clear();
    const Value out = value_of(y, "the model output");
    spaces_[find(out.space)].info.reaches_output = true;
    return collect();
  }

 private:
  Device first_device() const {
    for (const auto& [name, p] : model_.named_parameters()) return p.device();
    return Device::cpu();
  }

  int new_space(std::int64_t size) {
    spaces_.push_back({});
    spaces_.back().info.size = size;
    parent_.push_back(static_cast<int>(parent_.size()));
    return static_cast<int>(spaces_.size()) - 1;
  }

  int find(int s) {
    while (parent_[s] != s) s = parent_[s] = parent_[parent_[s]];
    return s;
  }

  void unite(int a, int b, const std::string& where) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    SHRINK_CHECK(spaces_[a].info.size == spaces_[b].info.size, "trace: ", where, " adds activations of ",
                 spaces_[a].info.size, " and ", spaces_[b].info.size, " channels");
    if (b < a) std::swap(a, b);
    parent_[b] = a;
    ChannelSpace& to = spaces_[a].info;
    ChannelSpace& from = spaces_[b].info;
    to.producers.insert(to.producers.end(), from.producers.begin(), from.producers.end());
    to.members.insert(to.members.end(), from.members.begin(), from.members.end());
    to.reads.insert(to.reads.end(), from.reads.begin(), from.reads.end());
    to.through_add = to.through_add || from.through_add;
    to.model_input = to.model_input || from.model_input;
    to.reaches_output = to.reaches_output || from.reaches_output;
    if (to.opaque.empty()) to.opaque = from.opaque;
    if (spaces_[a].first_producer_call < 0 || (spaces_[b].first_producer_call >= 0 &&
                                               spaces_[b].first_producer_call < spaces_[a].first_producer_call))
      spaces_[a].first_producer_call = spaces_[b].first_producer_call;
  }

  void note_reader(const Value& v, const std::string& reader) {
    if (!v.made_by.empty()) readers_[v.made_by].push_back(reader);
  }

  // The value `t` holds: recorded when a leaf module or the input made it, else derived
  // from the autograd node of the op that did.
  Value value_of(const Tensor& t, const std::string& reader) {
    auto known = values_.find(t.impl());
    if (known != values_.end()) return known->second;
    const auto& node = t.grad_fn();
    SHRINK_CHECK(node != nullptr, "trace: cannot tell where the input of ", reader,
                 " comes from (not the model input, no module made it, no op recorded it)");
    const std::string op = node->op;
    Value v;
    if (per_channel_op(op)) {
      v = value_of(node->inputs.at(0), reader);
      note_reader(v, "op:" + op);
      v.path.clear();
      v.foldable = false;
    } else if (binary_elementwise_op(op)) {
      std::vector<Value> operands;
      for (const Tensor& in : node->inputs) {
        const bool activation = values_.count(in.impl()) || in.grad_fn() != nullptr;
        if (activation && in.shape() == t.shape()) operands.push_back(value_of(in, reader));
        else SHRINK_CHECK(in.numel() == 1 || !activation, "trace: ", reader, " reads an '", op,
                          "' that broadcasts an activation of shape ", shape_str(in.shape()), " to ",
                          shape_str(t.shape()), "; channels cannot be traced through it");
      }
      SHRINK_CHECK(!operands.empty(), "trace: ", reader, " reads an '", op, "' of no traced activation");
      v = operands.front();
      for (const Value& o : operands) note_reader(o, "op:" + op);
      for (std::size_t i = 1; i < operands.size(); ++i) {
        SHRINK_CHECK(operands[i].block == v.block, "trace: ", reader, " reads an '", op,
                     "' of activations whose channels are laid out differently");
        unite(v.space, operands[i].space, "an '" + op + "' read by " + reader);
      }
      if (operands.size() > 1) spaces_[find(v.space)].info.through_add = true;
      v.path.clear();
      v.foldable = false;
      v.activation.clear();
    } else if (op == "reshape") {
      const Tensor& in = node->inputs.at(0);
      v = value_of(in, reader);
      note_reader(v, "op:reshape");
      const bool flattens = t.dim() == 2 && in.dim() >= 2 && t.size(0) == in.size(0);
      SHRINK_CHECK(flattens, "trace: ", reader, " reads a reshape of ", shape_str(in.shape()), " into ",
                   shape_str(t.shape()), "; only flattening (N, C, ...) to (N, C*...) keeps channels traceable");
      if (in.dim() > 2) v.block *= in.numel() / (in.size(0) * in.size(1));
    } else {
      fail("trace: cannot trace channels through the op '", op, "' that feeds ", reader,
           "; express it as a module that declares its channels (nn::Module::channels)");
    }
    v.made_by.clear();
    keep_.push_back(t);
    values_[t.impl()] = v;
    return v;
  }

  void on_call(const std::string& path, nn::Module& m, const Tensor& in, Tensor& out) {
    const std::string who = "'" + path + "' (" + m.type_name() + ")";
    const nn::Module::ChannelSpec spec = m.channels();
    const Value v = value_of(in, who);
    note_reader(v, path);
    keep_.push_back(in);
    keep_.push_back(out);
    ++calls_;
    Value result;
    switch (spec.kind) {
      case Kind::Transform: {
        ChannelSpace& read = spaces_[find(v.space)].info;
        for (const auto& [tensor, axis] : spec.input_axes) read.members.push_back({join(path, tensor), axis, v.block});
        read.reads.push_back({path, v.activation, v.path, v.foldable, v.block, ""});
        const int s = new_space(channel_count(out));
        spaces_[s].info.producers.push_back(path);
        spaces_[s].first_producer_call = calls_;
        for (const auto& [tensor, axis] : spec.output_axes) spaces_[s].info.members.push_back({join(path, tensor), axis, 1});
        result = Value{s, 1, path, {}, true, path};
        break;
      }
      case Kind::Elementwise: {
        ChannelSpace& space = spaces_[find(v.space)].info;
        for (const auto& [tensor, axis] : spec.output_axes) {
          const Member member{join(path, tensor), axis, v.block};
          if (std::find(space.members.begin(), space.members.end(), member) == space.members.end())
            space.members.push_back(member);
        }
        result = v;
        result.path.push_back(path);
        result.activation = path;
        result.made_by = path;
        break;
      }
      case Kind::Flatten:
        result = v;
        if (in.dim() > 2) result.block *= in.numel() / (in.size(0) * in.size(1));
        result.made_by = path;
        break;
      case Kind::Opaque: {
        spaces_[find(v.space)].info.opaque = who;
        const int s = new_space(channel_count(out));
        spaces_[s].info.opaque = who;
        result = Value{s, 1, path, {}, false, path};
        break;
      }
    }
    values_[out.impl()] = result;
  }

  ChannelTrace collect() {
    std::vector<int> roots;
    for (int s = 0; s < static_cast<int>(spaces_.size()); ++s)
      if (find(s) == s) roots.push_back(s);
    std::stable_sort(roots.begin(), roots.end(), [&](int a, int b) {
      return spaces_[a].first_producer_call < spaces_[b].first_producer_call;
    });
    ChannelTrace trace;
    for (int r : roots) {
      ChannelSpace space = spaces_[r].info;
      // Members in the documented order: producers' outputs, elementwise members, consumers' inputs.
      std::set<std::string> consumers;
      for (const ConsumerRead& read : space.reads) consumers.insert(read.consumer);
      std::set<std::string> producers(space.producers.begin(), space.producers.end());
      auto rank = [&](const Member& m) {
        const std::string owner = m.tensor.substr(0, m.tensor.rfind('.') == std::string::npos ? 0 : m.tensor.rfind('.'));
        if (producers.count(owner) && m.axis == 0) return 0;
        if (consumers.count(owner)) return 2;
        return 1;
      };
      std::stable_sort(space.members.begin(), space.members.end(),
                       [&](const Member& a, const Member& b) { return rank(a) < rank(b); });
      trace.spaces.push_back(std::move(space));
    }
    for (ChannelSpace& space : trace.spaces)
      for (ConsumerRead& read : space.reads) {
        const auto found = readers_.find(read.consumer);
        if (found == readers_.end() || found->second.size() != 1) continue;
        const std::string& reader = found->second.front();
        if (reader.rfind("op:", 0) != 0 && model_.child(reader)->has_buffer("running_mean")) read.norm_after = reader;
      }
    trace.readers = std::move(readers_);
    return trace;
  }

  nn::Module& model_;
  std::vector<RawSpace> spaces_;
  std::vector<int> parent_;
  std::unordered_map<const TensorImpl*, Value> values_;
  std::vector<Tensor> keep_;  // every traced tensor stays alive, so no address is reused
  std::map<std::string, std::vector<std::string>> readers_;
  int calls_ = 0;
};

}  // namespace

ChannelTrace trace_channels(nn::Module& model, const Shape& sample_shape) {
  return Tracer(model).run(sample_shape);
}

}  // namespace shrink::prune
