#include "nn/activation.h"

#include "core/ops.h"
#include "core/strings.h"

namespace shrink::nn {

const std::vector<ActivationKind>& activation_kinds() {
  static const std::vector<ActivationKind> kinds = {
      {"relu", "ReLU", &shrink::relu},    {"relu6", "ReLU6", &shrink::relu6},
      {"gelu", "GELU", &shrink::gelu},    {"gelu_tanh", "GELU(approximate='tanh')", &shrink::gelu_tanh},
      {"tanh", "Tanh", &shrink::tanh},
      {"sigmoid", "Sigmoid", &shrink::sigmoid},
  };
  return kinds;
}

namespace {
std::string valid_names() {
  std::vector<std::string> names;
  for (const auto& k : activation_kinds()) names.push_back(k.name);
  return join(names, ", ");
}
}  // namespace

std::shared_ptr<Module> make_activation(const std::string& name) {
  for (const auto& k : activation_kinds())
    if (name == k.name) return std::make_shared<Activation>(k);
  fail("unknown activation '", name, "'; valid: ", valid_names());
}

std::string activation_name(const Module& module) {
  const auto* act = dynamic_cast<const Activation*>(&module);
  SHRINK_CHECK(act != nullptr, "activation_name: ", module.type_name(),
               " is not an activation (", valid_names(), ")");
  return act->kind().name;
}

}  // namespace shrink::nn
