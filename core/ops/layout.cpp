// Layout ops: flatten, expand, transpose, permute (strided copies), and the gather family
// index_select / slice / concat, whose adjoint is the scatter-add kernel index_add.
#include <algorithm>

#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace {

Tensor strided(const Tensor& x, const Shape& out_shape, const std::vector<std::int64_t>& in_strides) {
  Tensor out = empty_like(x, out_shape);
  if (out.numel() > 0)
    backend_of(x).strided_copy(x.dtype(), static_cast<int>(out_shape.size()), out_shape.data(),
                               in_strides.data(), x.raw_data(), out.raw_data());
  return out;
}

// grad_in (shape of x) = scatter-add of `g` along `axis` at `indices`.
Tensor scatter_add(const Tensor& g, const Shape& x_shape, int axis, const Tensor& indices) {
  Tensor dx = Tensor::zeros(x_shape, g.dtype(), g.device());
  const AxisView v = axis_view(x_shape, axis);
  if (g.numel() > 0)
    backend_of(g).index_add(g.dtype(), v.outer, v.dim, v.inner, indices.numel(),
                            static_cast<const std::int64_t*>(indices.raw_data()), g.raw_data(),
                            dx.raw_data());
  return dx;
}

Tensor index_range(std::int64_t start, std::int64_t count, std::int64_t step, Device device) {
  std::vector<std::int64_t> idx(static_cast<size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) idx[i] = start + i * step;
  return Tensor::from_vector(idx, {count}, device);
}

}  // namespace

Tensor flatten(const Tensor& x, std::int64_t start_axis) {
  const int start = normalize_axis("flatten", start_axis, std::max<std::int64_t>(x.dim(), 1));
  Shape shape(x.shape().begin(), x.shape().begin() + std::min<std::int64_t>(start, x.dim()));
  shape.push_back(prod(x.shape(), start, static_cast<int>(x.dim())));
  return reshape(x, shape);
}

Tensor expand(const Tensor& x, const Shape& shape) {
  check_defined("expand", x);
  const Shape target = broadcast_shapes("expand", x.shape(), shape);
  SHRINK_CHECK(target == shape, "expand: cannot expand ", shape_str(x.shape()), " to ",
               shape_str(shape));
  if (x.shape() == shape) return x;
  std::vector<std::int64_t> strides(shape.size(), 0);
  const auto own = contiguous_strides(x.shape());
  const size_t lead = shape.size() - x.shape().size();
  for (size_t i = 0; i < x.shape().size(); ++i)
    strides[lead + i] = x.shape()[i] == 1 ? 0 : own[i];
  Tensor out = strided(x, shape, strides);
  if (needs_grad({&x}))
    record(out, "expand", {x}, [x_shape = x.shape()](const Tensor& g) {
      return std::vector<Tensor>{sum_to(g, x_shape)};
    });
  return out;
}

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& order) {
  check_defined("permute", x);
  SHRINK_CHECK(static_cast<std::int64_t>(order.size()) == x.dim(), "permute: order has ",
               order.size(), " axes for a tensor of shape ", shape_str(x.shape()));
  std::vector<std::int64_t> inverse(order.size(), -1);
  const auto own = contiguous_strides(x.shape());
  Shape out_shape(order.size());
  std::vector<std::int64_t> strides(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const int a = normalize_axis("permute", order[i], x.dim());
    SHRINK_CHECK(inverse[a] < 0, "permute: axis ", order[i], " is repeated");
    inverse[a] = static_cast<std::int64_t>(i);
    out_shape[i] = x.shape()[a];
    strides[i] = own[a];
  }
  Tensor out = strided(x, out_shape, strides);
  if (needs_grad({&x}))
    record(out, "permute", {x}, [inverse](const Tensor& g) {
      return std::vector<Tensor>{permute(g, inverse)};
    });
  return out;
}

Tensor transpose(const Tensor& x, std::int64_t axis0, std::int64_t axis1) {
  check_defined("transpose", x);
  std::vector<std::int64_t> order(x.dim());
  for (int i = 0; i < x.dim(); ++i) order[i] = i;
  std::swap(order[normalize_axis("transpose", axis0, x.dim())],
            order[normalize_axis("transpose", axis1, x.dim())]);
  return permute(x, order);
}

Tensor index_select(const Tensor& x, std::int64_t axis_in, const Tensor& indices) {
  check_defined("index_select", x);
  check_defined("index_select", indices);
  SHRINK_CHECK(indices.dtype() == DType::Int64 && indices.dim() == 1,
               "index_select: indices must be a 1-D int64 tensor, got ", dtype_name(indices.dtype()),
               " ", shape_str(indices.shape()));
  SHRINK_CHECK(indices.device() == x.device(), "index_select: tensor on ", x.device().str(),
               " but indices on ", indices.device().str());
  const int axis = normalize_axis("index_select", axis_in, x.dim());
  check_index_range("index_select", indices, x.size(axis),
                    "axis " + std::to_string(axis) + " of " + shape_str(x.shape()));
  Shape out_shape = x.shape();
  out_shape[axis] = indices.numel();
  Tensor out = empty_like(x, out_shape);
  const AxisView v = axis_view(x.shape(), axis);
  if (out.numel() > 0)
    backend_of(x).index_select(x.dtype(), v.outer, v.dim, v.inner, x.raw_data(), indices.numel(),
                               static_cast<const std::int64_t*>(indices.raw_data()), out.raw_data());
  if (needs_grad({&x}))
    record(out, "index_select", {x}, [indices, axis, x_shape = x.shape()](const Tensor& g) {
      return std::vector<Tensor>{scatter_add(g, x_shape, axis, indices)};
    });
  return out;
}

Tensor slice(const Tensor& x, std::int64_t axis_in, std::int64_t start, std::int64_t end,
             std::int64_t step) {
  check_defined("slice", x);
  const int axis = normalize_axis("slice", axis_in, x.dim());
  const std::int64_t size = x.size(axis);
  SHRINK_CHECK(step > 0, "slice: step must be positive, got ", step);
  if (start < 0) start += size;
  if (end < 0) end += size;
  end = std::min(end, size);
  SHRINK_CHECK(start >= 0 && start <= size, "slice: start ", start, " is out of range for axis ",
               axis, " of size ", size, " in ", shape_str(x.shape()));
  const std::int64_t count = end > start ? (end - start + step - 1) / step : 0;
  return index_select(x, axis, index_range(start, count, step, x.device()));
}

Tensor concat(const std::vector<Tensor>& parts, std::int64_t axis_in) {
  SHRINK_CHECK(!parts.empty(), "concat: needs at least one tensor");
  const Tensor& first = parts[0];
  check_floating("concat", first);
  const int axis = normalize_axis("concat", axis_in, first.dim());
  Shape out_shape = first.shape();
  out_shape[axis] = 0;
  for (const Tensor& p : parts) {
    check_compatible("concat", first, p);
    Shape a = p.shape(), b = first.shape();
    SHRINK_CHECK(a.size() == b.size(), "concat: ", shape_str(a), " and ", shape_str(b),
                 " differ in rank");
    a[axis] = b[axis] = 0;
    SHRINK_CHECK(a == b, "concat: ", shape_str(p.shape()), " and ", shape_str(first.shape()),
                 " differ outside axis ", axis);
    out_shape[axis] += p.size(axis);
  }
  Tensor out = Tensor::zeros(out_shape, first.dtype(), first.device());
  std::vector<Tensor> ranges;
  std::int64_t offset = 0;
  for (const Tensor& p : parts) {
    ranges.push_back(index_range(offset, p.size(axis), 1, p.device()));
    offset += p.size(axis);
    const AxisView v = axis_view(out_shape, axis);
    if (p.numel() > 0)
      backend_of(p).index_add(p.dtype(), v.outer, v.dim, v.inner, p.size(axis),
                              static_cast<const std::int64_t*>(ranges.back().raw_data()),
                              p.raw_data(), out.raw_data());
  }
  if (needs_grad(parts))
    record(out, "concat", parts, [ranges, axis](const Tensor& g) {
      std::vector<Tensor> grads;
      for (const Tensor& r : ranges) grads.push_back(index_select(g, axis, r));
      return grads;
    });
  return out;
}

}  // namespace shrink
