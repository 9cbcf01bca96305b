#include "nn/pool.h"

namespace shrink::nn {

Pool2d::Pool2d(Kind kind, std::int64_t kernel, std::int64_t stride, std::int64_t padding) : kind_(kind) {
  const char* name = kind == Kind::Max ? "MaxPool2d" : "AvgPool2d";
  if (stride == 0) stride = kernel;
  SHRINK_CHECK(kernel >= 1 && stride >= 1 && padding >= 0, name, ": kernel (", kernel, ") and stride (", stride,
               ") must be >= 1 and padding (", padding, ") >= 0");
  SHRINK_CHECK(2 * padding <= kernel, name, ": padding (", padding, ") must be at most half the kernel (", kernel, ")");
  options_ = {kernel, kernel, stride, stride, padding, padding};
}

std::string Pool2d::extra_repr() const {
  return "kernel_size=" + std::to_string(options_.kernel_h) + ", stride=" + std::to_string(options_.stride_h) +
         ", padding=" + std::to_string(options_.pad_h);
}

Tensor Pool2d::forward(const Tensor& x) {
  return kind_ == Kind::Max ? max_pool2d(x, options_) : avg_pool2d(x, options_);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(std::int64_t out_h, std::int64_t out_w) : out_h_(out_h), out_w_(out_w) {
  SHRINK_CHECK(out_h >= 1 && out_w >= 1, "AdaptiveAvgPool2d: output size must be >= 1, got ", out_h, "x", out_w);
}

std::string AdaptiveAvgPool2d::extra_repr() const {
  return "output_size=(" + std::to_string(out_h_) + ", " + std::to_string(out_w_) + ")";
}

}  // namespace shrink::nn
