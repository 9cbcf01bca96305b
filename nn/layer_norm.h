// LayerNorm over the last axis with an affine weight and bias (dim), as torch.nn.LayerNorm
// with normalized_shape = (dim,). The width is read from the weight's shape.
#pragma once
#include <cstdint>

#include "nn/module.h"

namespace shrink::nn {

class LayerNorm : public Module {
 public:
  // weight = 1, bias = 0 (PyTorch's reset_parameters).
  explicit LayerNorm(std::int64_t dim, double eps = 1e-5);
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;
  std::int64_t dim() const { return parameter("weight").size(0); }
  double eps() const { return eps_; }

 protected:
  Tensor forward(const Tensor& x) override;

 private:
  double eps_;
};

}  // namespace shrink::nn
