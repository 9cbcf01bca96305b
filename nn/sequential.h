// Sequential: children named "0", "1", ... applied in order, as torch.nn.Sequential, so
// state_dict keys read "1.weight", "3.bias". Its shape and cost are those of the chain.
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

  std::string type_name() const override { return "Sequential"; }
  Tensor forward(const Tensor& x) override;
  Shape output_shape(const Shape& input_shape) const override;
  std::int64_t flops(const Shape& input_shape) const override;

  std::size_t size() const { return named_children().size(); }
  std::shared_ptr<Module> operator[](std::size_t i) const;
};

}  // namespace shrink::nn
