// Pointwise activations as modules (no parameters). Each forwards to the core op of the
// same name; the cost model counts them as free (see nn/flops.h).
#pragma once
#include "nn/module.h"

namespace shrink::nn {

class ReLU : public Module {
 public:
  std::string type_name() const override { return "ReLU"; }
  Tensor forward(const Tensor& x) override;
  ChannelSpec channels() const override { return {ChannelSpec::Kind::Elementwise, {}, {}}; }
};

class ReLU6 : public Module {
 public:
  std::string type_name() const override { return "ReLU6"; }
  Tensor forward(const Tensor& x) override;
  ChannelSpec channels() const override { return {ChannelSpec::Kind::Elementwise, {}, {}}; }
};

// Exact GELU, x * Phi(x) (PyTorch's default approximate='none').
class GELU : public Module {
 public:
  std::string type_name() const override { return "GELU"; }
  Tensor forward(const Tensor& x) override;
  ChannelSpec channels() const override { return {ChannelSpec::Kind::Elementwise, {}, {}}; }
};

class Tanh : public Module {
 public:
  std::string type_name() const override { return "Tanh"; }
  Tensor forward(const Tensor& x) override;
  ChannelSpec channels() const override { return {ChannelSpec::Kind::Elementwise, {}, {}}; }
};

class Sigmoid : public Module {
 public:
  std::string type_name() const override { return "Sigmoid"; }
  Tensor forward(const Tensor& x) override;
  ChannelSpec channels() const override { return {ChannelSpec::Kind::Elementwise, {}, {}}; }
};

// Builds an activation from its lower-case name: relu, relu6, gelu, tanh, sigmoid.
// Throws shrink::Error listing the valid names otherwise.
std::shared_ptr<Module> make_activation(const std::string& name);
// The lower-case name of an activation module ("relu" for ReLU); throws for other modules.
std::string activation_name(const Module& module);

}  // namespace shrink::nn
