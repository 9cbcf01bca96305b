// Module: the base of every layer and model, with PyTorch's semantics. A module owns
// named parameters (trainable leaves), named buffers (state that is saved but not
// trained, e.g. BatchNorm running statistics) and named children. Names are recursive
// and dotted ("0.weight", "layers.1.bias"), in registration order.
//
// Pruning rewrites modules in place: a parameter slot can be replaced by a smaller
// tensor (set_parameter) and a child by a rebuilt layer (set_child). Layers therefore
// derive their sizes from their tensors' shapes and never store a width twice.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace shrink::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The layer's class name ("Linear", "ReLU"), for printing and architecture metadata.
  virtual std::string type_name() const = 0;
  // Constructor arguments worth printing, e.g. "in_features=784, out_features=300".
  virtual std::string extra_repr() const { return ""; }
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  // ---- channel declarations (prune/ builds coupled groups from these) ----
  // How a module relates to the channels (the last axis of an MLP activation, axis 1 of
  // a conv activation) flowing through it. Pruning never guesses: a module that does not
  // declare itself is opaque, and group building stops with an error naming it.
  struct ChannelSpec {
    enum class Kind {
      Opaque,       // unknown: channels cannot be traced through it
      Elementwise,  // output channel c depends on input channel c only (activations, BN)
      Transform,    // consumes input channels and produces new ones (Linear, Conv2d)
    } kind = Kind::Opaque;
    // (parameter or buffer name, axis) sliced when the channels they index shrink.
    std::vector<std::pair<std::string, int>> input_axes;   // Transform: indexed by input channels
    std::vector<std::pair<std::string, int>> output_axes;  // Transform and Elementwise: by output channels
  };
  virtual ChannelSpec channels() const { return {}; }

  // ---- cost model (nn/flops.h) ----
  // Per-sample shapes, without the batch axis. The defaults describe a shape-preserving
  // module that costs nothing (activations, dropout); a module with children must override.
  virtual Shape output_shape(const Shape& input_shape) const;
  virtual std::int64_t flops(const Shape& input_shape) const;

  // ---- registration (constructors only: it may invalidate references to slots) ----
  // Registers a trainable leaf: the tensor is detached from any history and marked
  // requires_grad. Returns the registered slot.
  Tensor& register_parameter(const std::string& name, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> child) {
    add_child(name, child);
    return child;
  }

  // ---- access and replacement; names may be dotted paths into children ----
  bool has_parameter(const std::string& name) const;
  Tensor& parameter(const std::string& name);
  const Tensor& parameter(const std::string& name) const;
  // Replaces a registered parameter with `value` (any shape: pruning shrinks it). A tensor
  // with autograd history is detached; a gradient attached to `value` is kept.
  void set_parameter(const std::string& name, Tensor value);
  bool has_buffer(const std::string& name) const;
  Tensor& buffer(const std::string& name);
  const Tensor& buffer(const std::string& name) const;
  void set_buffer(const std::string& name, Tensor value);
  std::shared_ptr<Module> child(const std::string& name) const;
  void set_child(const std::string& name, std::shared_ptr<Module> module);

  // ---- recursive views, in registration order (own entries before children's) ----
  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const {
    return children_;
  }
  // This module (name "") and every descendant, depth first.
  std::vector<std::pair<std::string, Module*>> named_modules();
  std::vector<std::pair<std::string, const Module*>> named_modules() const;

  // ---- state ----
  StateDict state_dict() const;  // parameters and buffers, sharing storage
  // Copies every entry into the matching slot (casting dtype, moving device). A shape
  // mismatch always throws, naming the tensor and both shapes; with `strict`, missing
  // and unexpected keys throw too, listing them.
  void load_state_dict(const StateDict& state, bool strict = true);

  void train(bool mode = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void to(Device device);  // moves parameters (with their gradients) and buffers
  void zero_grad();        // drops every parameter's gradient (PyTorch set_to_none)
  std::int64_t num_parameters() const;
  std::string to_string() const;  // multi-line tree, PyTorch style

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> child);
  // Resolves "a.b.leaf" to the module owning "leaf"; throws naming `what` if a step is missing.
  Module& owner_of(const std::string& dotted, std::string& leaf, const char* what);
  const Module& owner_of(const std::string& dotted, std::string& leaf, const char* what) const;
  void collect(const std::string& prefix, bool params, NamedTensors& out) const;
  void to_string(std::string& out, const std::string& name, int indent) const;

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace shrink::nn
