// gather along an axis with one index per output element (torch.gather with equal sizes
// off the axis), and its adjoint scatter_add_along, which max's backward uses too. Both run
// on the tensors' device through the backend's gather / scatter_add kernels.
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace ops_detail {

Tensor scatter_add_along(const Tensor& src, const Shape& x_shape, int axis, const Tensor& idx) {
  SHRINK_CHECK(src.numel() == idx.numel() && src.device() == idx.device(),
               "scatter_add: source ", shape_str(src.shape()), " on ", src.device().str(),
               " does not match indices ", shape_str(idx.shape()), " on ", idx.device().str());
  Tensor out = Tensor::zeros(x_shape, src.dtype(), src.device());
  const AxisView v = axis_view(x_shape, axis);
  const std::int64_t rest = v.outer * v.inner;
  const std::int64_t n_idx = rest == 0 ? 0 : idx.numel() / rest;
  if (src.numel() > 0)
    backend_of(src).scatter_add(src.dtype(), v.outer, v.dim, v.inner, n_idx,
                                static_cast<const std::int64_t*>(idx.raw_data()), src.raw_data(),
                                out.raw_data());
  return out;
}

}  // namespace ops_detail

Tensor gather(const Tensor& x, std::int64_t axis_in, const Tensor& indices) {
  check_floating("gather", x);
  check_defined("gather", indices);
  SHRINK_CHECK(indices.dtype() == DType::Int64, "gather: indices must be int64, got ",
               dtype_name(indices.dtype()));
  SHRINK_CHECK(indices.device() == x.device(), "gather: tensor on ", x.device().str(),
               " but indices on ", indices.device().str());
  const int axis = normalize_axis("gather", axis_in, x.dim());
  bool same_off_axis = indices.dim() == x.dim();
  for (int d = 0; same_off_axis && d < x.dim(); ++d)
    same_off_axis = d == axis || indices.size(d) == x.size(d);
  SHRINK_CHECK(same_off_axis, "gather: indices ", shape_str(indices.shape()), " must match ",
               shape_str(x.shape()), " on every axis but ", axis);
  check_index_range("gather", indices, x.size(axis),
                    "axis " + std::to_string(axis) + " of " + shape_str(x.shape()));
  Tensor out = empty_like(x, indices.shape());
  const AxisView v = axis_view(x.shape(), axis);
  if (out.numel() > 0)
    backend_of(x).gather(x.dtype(), v.outer, v.dim, v.inner, x.raw_data(), indices.size(axis),
                         static_cast<const std::int64_t*>(indices.raw_data()), out.raw_data());
  if (needs_grad({&x}))
    record(out, "gather", {x}, [indices, axis, x_shape = x.shape()](const Tensor& g) {
      return std::vector<Tensor>{scatter_add_along(g, x_shape, axis, indices)};
    });
  return out;
}

}  // namespace shrink
