#include "nn/linear.h"

#include <cmath>

#include "core/ops.h"
#include "core/random.h"

namespace shrink::nn {

namespace {

// kaiming_uniform with a = sqrt(5): gain = sqrt(2 / (1 + a^2)) = sqrt(1/3) and
// bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in); PyTorch uses the same bound for b.
double default_bound(std::int64_t fan_in) { return 1.0 / std::sqrt(static_cast<double>(fan_in)); }

void check_shapes(const Shape& w, const Shape* b) {
  SHRINK_CHECK(w.size() == 2 && w[0] > 0 && w[1] > 0,
               "Linear: weight must be (out_features, in_features) with both > 0, got ",
               shape_str(w));
  if (b)
    SHRINK_CHECK(b->size() == 1 && (*b)[0] == w[0], "Linear: bias ", shape_str(*b),
                 " does not match weight ", shape_str(w), " (expected (", w[0], "))");
}

}  // namespace

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias, Generator& gen) {
  SHRINK_CHECK(in_features > 0 && out_features > 0, "Linear: in_features (", in_features,
               ") and out_features (", out_features, ") must be > 0");
  const double bound = default_bound(in_features);
  register_parameter("weight", Tensor::uniform({out_features, in_features}, -bound, bound, gen));
  if (bias) register_parameter("bias", Tensor::uniform({out_features}, -bound, bound, gen));
}

Linear::Linear(Tensor weight, Tensor bias) {
  SHRINK_CHECK(weight.defined(), "Linear: weight is undefined");
  const Shape bias_shape = bias.defined() ? bias.shape() : Shape{};
  check_shapes(weight.shape(), bias.defined() ? &bias_shape : nullptr);
  if (bias.defined())
    SHRINK_CHECK(bias.device() == weight.device() && bias.dtype() == weight.dtype(),
                 "Linear: bias (", dtype_name(bias.dtype()), ", ", bias.device().str(),
                 ") and weight (", dtype_name(weight.dtype()), ", ", weight.device().str(),
                 ") must share dtype and device");
  register_parameter("weight", std::move(weight));
  if (bias.defined()) register_parameter("bias", std::move(bias));
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_features()) +
         ", out_features=" + std::to_string(out_features()) +
         ", bias=" + (has_bias() ? "true" : "false");
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight(), bias()); }

Module::ChannelSpec Linear::channels() const {
  ChannelSpec spec;
  spec.kind = ChannelSpec::Kind::Transform;
  spec.input_axes = {{"weight", 1}};
  spec.output_axes = {{"weight", 0}};
  if (has_bias()) spec.output_axes.push_back({"bias", 0});
  return spec;
}

}  // namespace shrink::nn
