#include "nn/conv.h"

#include <cmath>

#include "core/random.h"

namespace shrink::nn {

namespace {

void check_geometry(const Conv2dGeometry& g) {
  SHRINK_CHECK(g.kernel_h >= 1 && g.kernel_w >= 1, "Conv2d: kernel size must be >= 1, got ", g.kernel_h, "x",
               g.kernel_w);
  SHRINK_CHECK(g.stride >= 1 && g.dilation >= 1 && g.padding >= 0, "Conv2d: stride (", g.stride,
               ") and dilation (", g.dilation, ") must be >= 1 and padding (", g.padding, ") >= 0");
  SHRINK_CHECK(g.groups >= 1, "Conv2d: groups must be >= 1, got ", g.groups);
}

}  // namespace

Conv2d::Conv2d(std::int64_t in_channels, std::int64_t out_channels, const Conv2dGeometry& g, bool bias,
               Generator& gen)
    : geometry_(g) {
  check_geometry(g);
  SHRINK_CHECK(in_channels > 0 && out_channels > 0, "Conv2d: in_channels (", in_channels,
               ") and out_channels (", out_channels, ") must be > 0");
  SHRINK_CHECK(in_channels % g.groups == 0 && out_channels % g.groups == 0, "Conv2d: in_channels (",
               in_channels, ") and out_channels (", out_channels, ") must be divisible by groups (", g.groups, ")");
  groups_ = g.groups;
  depthwise_ = g.groups > 1 && g.groups == in_channels && g.groups == out_channels;
  const std::int64_t fan_in = in_channels / g.groups * g.kernel_h * g.kernel_w;
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));  // kaiming_uniform(a = sqrt(5))
  register_parameter("weight",
                     Tensor::uniform({out_channels, in_channels / g.groups, g.kernel_h, g.kernel_w}, -bound, bound, gen));
  if (bias) register_parameter("bias", Tensor::uniform({out_channels}, -bound, bound, gen));
}

Conv2d::Conv2d(Tensor weight, Tensor bias, const Conv2dGeometry& g) : geometry_(g) {
  check_geometry(g);
  SHRINK_CHECK(weight.defined() && weight.dim() == 4, "Conv2d: weight must be (out, in / groups, kh, kw), got ",
               weight.defined() ? shape_str(weight.shape()) : std::string("undefined"));
  groups_ = g.groups;
  depthwise_ = g.groups > 1 && weight.size(1) == 1 && weight.size(0) == g.groups;
  register_parameter("weight", std::move(weight));
  if (bias.defined()) register_parameter("bias", std::move(bias));
  check_invariants();
}

void Conv2d::check_invariants() const {
  const Tensor& w = weight();
  SHRINK_CHECK(w.dim() == 4 && w.size(0) > 0 && w.size(1) > 0, "Conv2d: weight must be (out, in / groups, kh, kw) "
               "with out, in > 0, got ", shape_str(w.shape()));
  SHRINK_CHECK(w.size(2) == geometry_.kernel_h && w.size(3) == geometry_.kernel_w, "Conv2d: weight ",
               shape_str(w.shape()), " does not have the layer's kernel ", geometry_.kernel_h, "x", geometry_.kernel_w);
  SHRINK_CHECK(depthwise_ ? w.size(1) == 1 : w.size(0) % groups_ == 0, "Conv2d: weight ", shape_str(w.shape()),
               depthwise_ ? " must have one input channel per filter (depthwise)"
                          : " has out channels not divisible by groups (" + std::to_string(groups_) + ")");
  if (has_parameter("bias")) {
    const Tensor& b = parameter("bias");
    SHRINK_CHECK(b.dim() == 1 && b.size(0) == w.size(0), "Conv2d: bias ", shape_str(b.shape()),
                 " does not match weight ", shape_str(w.shape()), " (expected (", w.size(0), "))");
    SHRINK_CHECK(b.dtype() == w.dtype() && b.device() == w.device(), "Conv2d: bias and weight must share dtype and device");
  }
}

Conv2dOptions Conv2d::options() const { return conv_options(geometry()); }

std::string Conv2d::extra_repr() const {
  const Conv2dGeometry& g = geometry_;
  std::string s = std::to_string(in_channels()) + ", " + std::to_string(out_channels()) + ", kernel_size=(" +
                  std::to_string(g.kernel_h) + ", " + std::to_string(g.kernel_w) + "), stride=" + std::to_string(g.stride);
  if (g.padding) s += ", padding=" + std::to_string(g.padding);
  if (g.dilation != 1) s += ", dilation=" + std::to_string(g.dilation);
  if (groups() != 1) s += ", groups=" + std::to_string(groups());
  if (!has_parameter("bias")) s += ", bias=false";
  return s;
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight(), bias(), options()); }

Module::ChannelSpec Conv2d::channels() const {
  // A grouped conv that is not depthwise ties channels in blocks no group declaration
  // describes yet: pruning treats it as opaque rather than guess.
  if (!depthwise_ && groups_ > 1) return {};
  ChannelSpec spec;
  // A depthwise conv's filter c reads channel c only: its input and output channels are one
  // space, as an activation's are. Any other conv consumes its input channels and makes new ones.
  spec.kind = depthwise_ ? ChannelSpec::Kind::Elementwise : ChannelSpec::Kind::Transform;
  if (!depthwise_) spec.input_axes = {{"weight", 1}};
  spec.output_axes = {{"weight", 0}};
  if (has_parameter("bias")) spec.output_axes.push_back({"bias", 0});
  return spec;
}

}  // namespace shrink::nn
