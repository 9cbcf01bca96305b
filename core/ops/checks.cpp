// Value checks (not differentiable): where a tensor first holds NaN or +-Inf. Training's
// fault checks and checkpoint loading call this once per tensor, so it runs on the tensor's
// device (kernel find_nonfinite) and reads back one scalar, plus the bad value itself.
#include <cmath>

#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

std::vector<std::int64_t> first_nonfinite_each(const std::vector<Tensor>& xs) {
  std::vector<std::int64_t> at(xs.size(), -1);
  const Tensor* first = nullptr;
  for (const Tensor& x : xs)
    if (x.defined()) {
      SHRINK_CHECK(!first || x.device() == first->device(), "first_nonfinite_each: tensors on ",
                   first->device().str(), " and ", x.device().str());
      if (!first) first = &x;
    }
  if (!first) return at;
  kernels::Backend& be = backend_of(*first);
  // Slot i of one device buffer receives tensor i's answer (n when all finite).
  Tensor slots = Tensor::empty({static_cast<std::int64_t>(xs.size())}, DType::Int64, first->device());
  auto* slot = static_cast<std::int64_t*>(slots.raw_data());
  std::vector<std::int64_t> sizes(xs.size(), 0);
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    const bool floating = x.defined() && x.dtype() != DType::Int64;
    sizes[i] = floating ? x.numel() : 0;
    be.find_nonfinite(floating ? x.dtype() : DType::Int64, sizes[i],
                      floating ? x.raw_data() : nullptr, slot + i);
  }
  be.copy_to_host(at.data(), slot, at.size() * sizeof(std::int64_t));
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (at[i] >= sizes[i]) at[i] = -1;
  return at;
}

std::int64_t first_nonfinite(const Tensor& x) {
  check_defined("first_nonfinite", x);
  return first_nonfinite_each({x})[0];
}

std::string nonfinite_str(const Tensor& x, std::int64_t position) {
  check_floating("nonfinite_str", x);
  SHRINK_CHECK(position >= 0 && position < x.numel(), "nonfinite_str: position ", position,
               " outside a tensor of ", x.numel(), " elements");
  double value = 0;
  if (x.dtype() == DType::Float64) {
    backend_of(x).copy_to_host(&value, static_cast<const double*>(x.raw_data()) + position, sizeof value);
  } else {
    float v = 0;
    backend_of(x).copy_to_host(&v, static_cast<const float*>(x.raw_data()) + position, sizeof v);
    value = v;
  }
  const char* what = std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
  return std::string(what) + " at element " + std::to_string(position) + " (index " +
         index_str(x.shape(), position) + " of " + shape_str(x.shape()) + ")";
}

std::string first_nonfinite_named(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<Tensor> values;
  values.reserve(named.size());
  for (const auto& entry : named) values.push_back(entry.second);
  const std::vector<std::int64_t> at = first_nonfinite_each(values);
  for (std::size_t i = 0; i < at.size(); ++i)
    if (at[i] >= 0) return "'" + named[i].first + "' holds " + nonfinite_str(values[i], at[i]);
  return "";
}

}  // namespace shrink
