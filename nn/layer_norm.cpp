#include "nn/layer_norm.h"

#include "core/ops.h"

namespace shrink::nn {

LayerNorm::LayerNorm(std::int64_t dim, double eps) : eps_(eps) {
  SHRINK_CHECK(dim > 0, "LayerNorm: dim must be > 0, got ", dim);
  SHRINK_CHECK(eps > 0, "LayerNorm: eps must be > 0, got ", eps);
  register_parameter("weight", Tensor::ones({dim}));
  register_parameter("bias", Tensor::zeros({dim}));
}

std::string LayerNorm::extra_repr() const {
  std::string s = "normalized_shape=";  // built by appends: GCC 12 warns (-Wrestrict) on "(" + string
  s += std::to_string(dim());
  s += ", eps=";
  s += std::to_string(eps_);
  return s;
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, parameter("weight"), parameter("bias"), eps_);
}

}  // namespace shrink::nn
