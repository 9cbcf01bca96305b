// sum, mean, max, argmax over axes. Multi-axis reductions run one axis at a time through
// the (outer, reduce, inner) kernel; gradients broadcast back with expand.
#include <algorithm>

#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace {

// Reduces one axis, keeping it as size 1.
Tensor reduce_axis_keepdim(kernels::ReduceOp op, const Tensor& x, int axis, Tensor* argmax) {
  const AxisView v = axis_view(x.shape(), axis);
  Shape out_shape = x.shape();
  out_shape[axis] = 1;
  Tensor out = empty_like(x, out_shape);
  std::int64_t* idx = nullptr;
  if (argmax) {
    *argmax = Tensor::empty(out_shape, DType::Int64, x.device());
    idx = static_cast<std::int64_t*>(argmax->raw_data());
  }
  if (out.numel() > 0)
    backend_of(x).reduce(op, x.dtype(), v.outer, v.dim, v.inner, x.raw_data(), out.raw_data(), idx);
  return out;
}

Shape drop_axes(const Shape& shape, const std::vector<int>& axes) {
  Shape out;
  for (int i = 0; i < static_cast<int>(shape.size()); ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) out.push_back(shape[i]);
  return out;
}

std::vector<int> normalize_axes(const char* op, const std::vector<std::int64_t>& axes,
                                std::int64_t ndim) {
  std::vector<int> out;
  for (auto a : axes) {
    const int n = normalize_axis(op, a, ndim);
    SHRINK_CHECK(std::find(out.begin(), out.end(), n) == out.end(), op, ": axis ", a,
                 " is repeated");
    out.push_back(n);
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, std::vector<std::int64_t> axes_in, bool keepdim) {
  check_floating("sum", x);
  const std::vector<int> axes = normalize_axes("sum", axes_in, x.dim());
  Tensor out = x.detach();
  {
    NoGradGuard no_grad;
    for (int a : axes) out = reduce_axis_keepdim(kernels::ReduceOp::Sum, out, a, nullptr);
  }
  Shape kept = out.shape();
  if (!keepdim) out = reshape(out, drop_axes(x.shape(), axes));
  if (needs_grad({&x})) {
    record(out, "sum", {x}, [kept, x_shape = x.shape()](const Tensor& g) {
      return std::vector<Tensor>{expand(reshape(g, kept), x_shape)};
    });
  }
  return out;
}

Tensor sum(const Tensor& x) {
  std::vector<std::int64_t> all(x.dim());
  for (int i = 0; i < x.dim(); ++i) all[i] = i;
  return sum(x, all, false);
}

Tensor mean(const Tensor& x, std::vector<std::int64_t> axes, bool keepdim) {
  std::int64_t count = 1;
  for (int a : normalize_axes("mean", axes, x.dim())) count *= x.size(a);
  SHRINK_CHECK(count > 0, "mean: reducing over an empty axis of ", shape_str(x.shape()));
  return mul_scalar(sum(x, axes, keepdim), 1.0 / static_cast<double>(count));
}

Tensor mean(const Tensor& x) {
  std::vector<std::int64_t> all(x.dim());
  for (int i = 0; i < x.dim(); ++i) all[i] = i;
  return mean(x, all, false);
}

Tensor max(const Tensor& x, std::int64_t axis_in, bool keepdim) {
  check_floating("max", x);
  const int axis = normalize_axis("max", axis_in, x.dim());
  SHRINK_CHECK(x.size(axis) > 0, "max: axis ", axis_in, " of ", shape_str(x.shape()), " is empty");
  Tensor idx;
  Tensor out = reduce_axis_keepdim(kernels::ReduceOp::Max, x.detach(), axis, &idx);
  if (!keepdim) out = reshape(out, drop_axes(x.shape(), {axis}));
  if (needs_grad({&x})) {
    record(out, "max", {x}, [idx, axis, x_shape = x.shape()](const Tensor& g) {
      // Scatter the gradient to the argmax position of each reduced slice, on g's device.
      // idx comes from our own reduce kernel, so it is in range by construction and is not
      // validated here (see check_index_range for user-given indices).
      return std::vector<Tensor>{scatter_add_along(g, x_shape, axis, idx)};
    });
  }
  return out;
}

Tensor argmax(const Tensor& x, std::int64_t axis_in, bool keepdim) {
  check_floating("argmax", x);
  const int axis = normalize_axis("argmax", axis_in, x.dim());
  SHRINK_CHECK(x.size(axis) > 0, "argmax: axis ", axis_in, " of ", shape_str(x.shape()), " is empty");
  Tensor idx;
  reduce_axis_keepdim(kernels::ReduceOp::Max, x.detach(), axis, &idx);
  if (!keepdim) idx = reshape(idx, drop_axes(x.shape(), {axis}));
  return idx;
}

double accuracy(const Tensor& logits, const Tensor& labels) {
  SHRINK_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
               "accuracy: expected logits (n, c) and labels (n,), got ", shape_str(logits.shape()),
               " and ", shape_str(labels.shape()));
  SHRINK_CHECK(labels.dtype() == DType::Int64, "accuracy: labels must be int64");
  if (logits.size(0) == 0) return 0.0;
  const auto pred = argmax(logits, 1).to_vector<std::int64_t>();
  const auto truth = labels.to_vector<std::int64_t>();
  std::int64_t correct = 0;
  for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == truth[i];
  return static_cast<double>(correct) / static_cast<double>(pred.size());
}

}  // namespace shrink
