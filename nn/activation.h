// Pointwise activations as modules (no parameters): one Activation class whose behaviour
// is a row of one table (name, class name, core op). The cost model counts them as free
// (see nn/flops.h). A new activation is one row in activation.cpp.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"

namespace shrink::nn {

struct ActivationKind {
  const char* name;       // lower-case, as specs and the command line spell it: "relu"
  const char* type_name;  // PyTorch's class name: "ReLU"
  Tensor (*op)(const Tensor&);
};

// relu, relu6, gelu (exact, x * Phi(x), PyTorch's default), tanh, sigmoid.
const std::vector<ActivationKind>& activation_kinds();

class Activation : public Module {
 public:
  explicit Activation(const ActivationKind& kind) : kind_(&kind) {}
  std::string type_name() const override { return kind_->type_name; }
  ChannelSpec channels() const override { return {ChannelSpec::Kind::Elementwise, {}, {}}; }
  const ActivationKind& kind() const { return *kind_; }

 protected:
  Tensor forward(const Tensor& x) override { return kind_->op(x); }

 private:
  const ActivationKind* kind_;  // a row of activation_kinds(), which lives forever
};

// Builds an activation from its lower-case name; throws shrink::Error listing the valid
// names otherwise.
std::shared_ptr<Module> make_activation(const std::string& name);
// The lower-case name of an activation module ("relu" for ReLU); throws for other modules.
std::string activation_name(const Module& module);

}  // namespace shrink::nn
