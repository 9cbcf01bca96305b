#include "nn/batch_norm.h"

#include "core/ops.h"

namespace shrink::nn {

BatchNorm2d::BatchNorm2d(std::int64_t channels, double eps, double momentum) : eps_(eps), momentum_(momentum) {
  SHRINK_CHECK(channels > 0, "BatchNorm2d: channels must be > 0, got ", channels);
  SHRINK_CHECK(eps > 0, "BatchNorm2d: eps must be > 0, got ", eps);
  set_momentum(momentum);
  register_parameter("weight", Tensor::ones({channels}));
  register_parameter("bias", Tensor::zeros({channels}));
  register_buffer("running_mean", Tensor::zeros({channels}));
  register_buffer("running_var", Tensor::ones({channels}));
}

void BatchNorm2d::set_momentum(double momentum) {
  SHRINK_CHECK(momentum >= 0 && momentum <= 1, "BatchNorm2d: momentum must be in [0, 1], got ", momentum);
  momentum_ = momentum;
}

void BatchNorm2d::check_invariants() const {
  const std::int64_t c = parameter("weight").size(0);
  for (const char* name : {"bias"})
    SHRINK_CHECK(parameter(name).dim() == 1 && parameter(name).size(0) == c, "BatchNorm2d: ", name, " ",
                 shape_str(parameter(name).shape()), " does not match weight (", c, ")");
  for (const char* name : {"running_mean", "running_var"})
    SHRINK_CHECK(buffer(name).dim() == 1 && buffer(name).size(0) == c, "BatchNorm2d: ", name, " ",
                 shape_str(buffer(name).shape()), " does not match weight (", c, ")");
}

std::string BatchNorm2d::extra_repr() const {
  return std::to_string(num_features()) + ", eps=" + std::to_string(eps_) + ", momentum=" + std::to_string(momentum_);
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  return batch_norm(x, parameter("weight"), parameter("bias"), buffer("running_mean"), buffer("running_var"),
                    is_training(), momentum_, eps_);
}

Module::ChannelSpec BatchNorm2d::channels() const {
  return {ChannelSpec::Kind::Elementwise, {}, {{"weight", 0}, {"bias", 0}, {"running_mean", 0}, {"running_var", 0}}};
}

}  // namespace shrink::nn
