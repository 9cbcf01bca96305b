// Sequential: children named "0", "1", ... applied in order, as torch.nn.Sequential, so
// state_dict keys read "1.weight", "3.bias". Each child is called through operator(), so
// hooks on a child fire, except that a conv, a folded BatchNorm (Identity) and a ReLU or ReLU6
// in a row that nothing hooks run as one kernel pass (nn/conv_fusion.h): the same values.
#pragma once
#include <memory>
#include <vector>

#include "nn/module.h"

namespace shrink::nn {

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> layers);
  void push_back(std::shared_ptr<Module> layer);  // registered as the next index
  // Registered under `name`, as torch.nn.Sequential(OrderedDict(...)) does ("conv1", "fc"),
  // so a model that is a chain still carries the parameter names users know.
  void push_back(const std::string& name, std::shared_ptr<Module> layer);

  std::string type_name() const override { return "Sequential"; }
  // Each child reads only its predecessor's output.
  std::vector<std::pair<std::string, std::string>> sole_reader_pairs() const override;

  std::size_t size() const { return named_children().size(); }
  std::shared_ptr<Module> operator[](std::size_t i) const;

  // forward(x) + residual, the add folded into the last convolution's pass where the chain ends
  // in a conv (and an Identity) that nn/conv_fusion.h fuses, and nothing hooks this Sequential
  // (an inverted residual block's add); otherwise the call and a separate add.
  Tensor call_then_add(const Tensor& x, const Tensor& residual);

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  // Layers from `first` on, `residual` (may be undefined) added by the last conv run when it
  // ends the chain without an activation; false in `added` when it was not (the caller adds).
  Tensor run_layers(const Tensor& x, const Tensor& residual, bool& added);
};

}  // namespace shrink::nn
