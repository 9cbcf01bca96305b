// Module: the base of every layer and model, with PyTorch's semantics. A module owns
// named parameters (trainable leaves), named buffers (state that is saved but not
// trained, e.g. BatchNorm running statistics) and named children. Names are recursive
// and dotted ("0.weight", "layers.1.bias"), in registration order.
//
// Modules are called through operator(), which runs forward hooks around the protected
// forward (as PyTorch's __call__): pruning criteria capture activations by module path
// with hooks, and nn/flops.h counts FLOPs by running a forward.
//
// Pruning rewrites modules in place: a parameter slot can be replaced by a smaller
// tensor (set_parameter) and a child by a rebuilt layer (set_child). Layers therefore
// derive their sizes from their tensors' shapes and never store a width twice.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace shrink::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using StateDict = std::map<std::string, Tensor>;

namespace detail {
struct HookLists;
}

// Owns one registered hook: remove() or the destructor unregisters it. Outliving the
// module is safe (the hook is then already gone).
class [[nodiscard]] HookHandle {
 public:
  HookHandle() = default;
  HookHandle(std::weak_ptr<detail::HookLists> lists, std::uint64_t id)
      : lists_(std::move(lists)), id_(id) {}
  ~HookHandle() { remove(); }
  HookHandle(HookHandle&& other) noexcept;
  HookHandle& operator=(HookHandle&& other) noexcept;
  HookHandle(const HookHandle&) = delete;
  HookHandle& operator=(const HookHandle&) = delete;
  void remove();

 private:
  std::weak_ptr<detail::HookLists> lists_;
  std::uint64_t id_ = 0;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The layer's class name ("Linear", "ReLU"), for printing.
  virtual std::string type_name() const = 0;
  // Constructor arguments worth printing, e.g. "in_features=784, out_features=300".
  virtual std::string extra_repr() const { return ""; }

  // ---- the call path (PyTorch's __call__) ----
  // The one entry point: runs the forward pre-hooks, then forward, then the forward
  // hooks (each may replace the output), in registration order. `extra` carries further
  // inputs (an attention mask); a module that takes none rejects them.
  Tensor operator()(const Tensor& x) { return call(x, nullptr); }
  Tensor operator()(const Tensor& x, const std::vector<Tensor>& extra) { return call(x, &extra); }

  using ForwardPreHook = std::function<void(Module& module, const Tensor& input)>;
  using ForwardHook = std::function<void(Module& module, const Tensor& input, Tensor& output)>;
  // Registered hooks stay until their handle is removed or destroyed: keep the handle.
  [[nodiscard]] HookHandle register_forward_pre_hook(ForwardPreHook hook);
  [[nodiscard]] HookHandle register_forward_hook(ForwardHook hook);
  // An override may stand in for a whole single-input call: the first one (in registration
  // order) that returns a tensor makes it the call's result, and the pre-hooks, forward (so
  // every child) and forward hooks do not run. prune/activation_memo.h uses it to reuse
  // activations that cannot have changed. Calls with extra inputs never consult overrides.
  using ForwardOverride = std::function<std::optional<Tensor>(Module& module, const Tensor& input)>;
  [[nodiscard]] HookHandle register_forward_override(ForwardOverride hook);
  // True while a pre-hook, hook or override is registered: a container that would compute this
  // module's step itself (fused with its own, as residual blocks fuse add and ReLU) must call
  // the module instead, so the hooks see every call.
  bool has_hooks() const;

  // ---- channel declarations (prune/ builds coupled groups from these) ----
  // How a module relates to the channels (the last axis of an MLP activation, axis 1 of
  // a conv activation) flowing through it. Pruning never guesses: a module that does not
  // declare itself is opaque, and group building stops with an error naming it.
  struct ChannelSpec {
    enum class Kind {
      Opaque,       // unknown: channels cannot be traced through it
      Elementwise,  // output channel c depends on input channel c only (activations, BN)
      Transform,    // consumes input channels and produces new ones (Linear, Conv2d)
      Flatten,      // (N, C, H, W) -> (N, C*H*W): channel c becomes H*W consecutive features
    } kind = Kind::Opaque;
    // (parameter or buffer name, axis) sliced when the channels they index shrink.
    std::vector<std::pair<std::string, int>> input_axes;   // Transform: indexed by input channels
    std::vector<std::pair<std::string, int>> output_axes;  // Transform and Elementwise: by output channels
  };
  virtual ChannelSpec channels() const { return {}; }

  // Prunable unit groups that channel tracing cannot follow, declared by the module that
  // holds them (attention splits its projections into heads by reshapes the tracer does not
  // read): each names, relative to this module, the tensors that lose a unit together and the
  // layer that reads the units. prune/group.h turns them into groups.
  struct DeclaredGroup {
    std::string name;                    // the group's name, e.g. "self_attn" (heads), "linear1" (neurons)
    std::string unit;                    // what a unit is: "head", "neuron"
    std::vector<std::string> producers;  // modules writing the units (magnitude reads their weights)
    struct Member {
      std::string tensor;
      int axis;
      std::int64_t block;  // consecutive entries per unit along `axis` (a head's head_dim rows)
    };
    std::vector<Member> members;
    std::string consumer;    // the module whose input holds the units, in blocks of `block`
    std::string activation;  // the module whose output holds them ("" when none does, as for heads)
    std::vector<std::string> path;  // elementwise modules from the producer to the consumer
    std::int64_t block = 1;
  };
  virtual std::vector<DeclaredGroup> declared_groups() const { return {}; }

  // Pairs (a, b) of this module's direct children where b's input is exactly a's output and
  // nothing else reads that output, so an inference rewrite may merge b into a (a Conv2d and
  // the BatchNorm2d after it: nn/fold_batch_norm.h). Only a container knows its dataflow: the
  // default is none; Sequential gives each adjacent pair, residual blocks their conv/BN pairs.
  virtual std::vector<std::pair<std::string, std::string>> sole_reader_pairs() const { return {}; }

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
  // With ShapeMismatch::Adopt, a slot whose shape differs is replaced by (a copy of) the
  // saved tensor instead: layers read their sizes from their tensors, so a model built at
  // its default sizes becomes the saved (e.g. pruned) one.
  // The copy writes the slots directly, bypassing the layers' constructors, so afterwards
  // every module's check_invariants() runs: a loaded state that breaks one (an edited CSR
  // row_ptr) throws, naming the layer's path and type and what is wrong. The module is
  // then left holding that state and must not be used.
  enum class ShapeMismatch { Throw, Adopt };
  void load_state_dict(const StateDict& state, bool strict = true,
                       ShapeMismatch on_mismatch = ShapeMismatch::Throw);
  // Throws a shrink::Error saying what is wrong when this module's own tensors break an
  // invariant its forward or pruning relies on beyond their shapes (e.g. a SparseLinear's
  // CSR structure). The default has none to check.
  virtual void check_invariants() const {}

  void train(bool mode = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void to(Device device);  // moves parameters (with their gradients) and buffers
  void zero_grad();        // drops every parameter's gradient (PyTorch set_to_none)
  std::int64_t num_parameters() const;
  std::string to_string() const;  // multi-line tree, PyTorch style

  // True for a model whose input is int64 token ids rather than floating values (a BERT-style
  // encoder): what a shape-only forward (nn/flops.h, prune/trace.h) must feed it.
  virtual bool takes_token_ids() const { return false; }

  // The model builder's spec (nn/models.h) on the root of a model a registered builder
  // made, as JSON text; empty for a hand-assembled module.
  const std::string& builder_spec() const { return builder_spec_; }
  void set_builder_spec(std::string spec_json) { builder_spec_ = std::move(spec_json); }

 protected:
  // The computation, called only through operator() (which runs the hooks).
  virtual Tensor forward(const Tensor& x);
  // A module that takes extra inputs overrides this; the default accepts none.
  virtual Tensor forward_with(const Tensor& x, const std::vector<Tensor>& extra);

 private:
  Tensor call(const Tensor& x, const std::vector<Tensor>* extra);
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
  std::shared_ptr<detail::HookLists> hooks_;  // null until the first hook is registered
  std::string builder_spec_;
};

}  // namespace shrink::nn
