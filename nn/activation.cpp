#include "nn/activation.h"

#include "core/ops.h"

namespace shrink::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor ReLU6::forward(const Tensor& x) { return relu6(x); }
Tensor GELU::forward(const Tensor& x) { return gelu(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }

namespace {
constexpr const char* kValid = "relu, relu6, gelu, tanh, sigmoid";
}

std::shared_ptr<Module> make_activation(const std::string& name) {
  if (name == "relu") return std::make_shared<ReLU>();
  if (name == "relu6") return std::make_shared<ReLU6>();
  if (name == "gelu") return std::make_shared<GELU>();
  if (name == "tanh") return std::make_shared<Tanh>();
  if (name == "sigmoid") return std::make_shared<Sigmoid>();
  fail("unknown activation '", name, "'; valid: ", kValid);
}

std::string activation_name(const Module& module) {
  const std::string type = module.type_name();
  if (type == "ReLU") return "relu";
  if (type == "ReLU6") return "relu6";
  if (type == "GELU") return "gelu";
  if (type == "Tanh") return "tanh";
  if (type == "Sigmoid") return "sigmoid";
  fail("activation_name: ", type, " is not an activation (", kValid, ")");
}

}  // namespace shrink::nn
