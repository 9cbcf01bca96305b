// Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), as torch.nn.Flatten() with start_dim = 1.
#pragma once
#include "nn/module.h"

namespace shrink::nn {

class Flatten : public Module {
 public:
  std::string type_name() const override { return "Flatten"; }

 protected:
  Tensor forward(const Tensor& x) override;
};

}  // namespace shrink::nn
