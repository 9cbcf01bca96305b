// Forward references for the op table's rows (tests/op_table.h), in double: each builder
// returns the function from a row's inputs (shape and values) to its expected output values,
// composed from the plain loops of kernels/reference/ with the op's semantics (broadcast
// shapes, axes, batching). Test files use them directly too (test_ops_*.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "core/shrink.h"
#include "kernels/backend.h"
#include "kernels/reference/conv.h"
#include "kernels/reference/elementwise.h"
#include "kernels/reference/gemm.h"
#include "kernels/reference/layout.h"
#include "kernels/reference/reduce.h"
#include "kernels/reference/softmax.h"
#include "kernels/reference/sparse.h"

namespace shrink::testing {

// One input of a reference computation: shape and values in double.
struct RefInput {
  Shape shape;
  std::vector<double> values;
};
// The expected forward output, flat, in double.
using ReferenceFn = std::function<std::vector<double>(const std::vector<RefInput>&)>;

namespace op_reference {


namespace ref = kernels::reference;
using R = const std::vector<RefInput>&;

inline Tensor int64s(const std::vector<std::int64_t>& v, Device device) {
  return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())}).to(device);
}

inline std::int64_t axis_of(std::int64_t axis, std::size_t ndim) {
  return axis < 0 ? axis + static_cast<std::int64_t>(ndim) : axis;
}

// (outer, size, inner) around `axis` of `s`.
struct Split {
  std::int64_t outer = 1, size = 1, inner = 1;
};
inline Split split(const Shape& s, std::int64_t axis) {
  Split p;
  for (std::int64_t d = 0; d < static_cast<std::int64_t>(s.size()); ++d)
    (d < axis ? p.outer : d == axis ? p.size : p.inner) *= s[d];
  return p;
}

inline ReferenceFn binary(kernels::BinaryOp op) {
  return [op](R in) {
    const Shape out = broadcast_shapes("reference", in[0].shape, in[1].shape);
    std::vector<double> y(static_cast<std::size_t>(numel(out)));
    ref::binary_broadcast(op, static_cast<int>(out.size()), out.data(),
                          static_cast<int>(in[0].shape.size()), in[0].shape.data(),
                          in[0].values.data(), static_cast<int>(in[1].shape.size()),
                          in[1].shape.data(), in[1].values.data(), y.data());
    return y;
  };
}

inline ReferenceFn unary(kernels::UnaryOp op, double alpha) {
  return [op, alpha](R in) {
    std::vector<double> y(in[0].values.size());
    ref::unary(op, static_cast<std::int64_t>(y.size()), alpha, in[0].values.data(), y.data());
    return y;
  };
}

inline ReferenceFn identity() {
  return [](R in) { return in[0].values; };
}

// (..., m, k) @ (..., k, n); an operand with one matrix is shared by every batch.
inline std::vector<double> matmul(R in) {
  const Shape &a = in[0].shape, &b = in[1].shape;
  const std::int64_t m = a[a.size() - 2], k = a.back(), n = b.back();
  const std::int64_t batch_a = numel(a) / (m * k), batch_b = numel(b) / (k * n);
  const std::int64_t batch = std::max(batch_a, batch_b);
  std::vector<double> c(static_cast<std::size_t>(batch * m * n));
  ref::gemm(false, false, m, n, k, 1.0, in[0].values.data(), k, batch_a == 1 ? 0 : m * k,
            in[1].values.data(), n, batch_b == 1 ? 0 : k * n, 0.0, c.data(), n, m * n, batch);
  return c;
}

// x (..., in) W^T with W (out, in), plus bias (out) when given.
inline std::vector<double> linear(R in) {
  const std::int64_t out = in[1].shape[0], k = in[1].shape[1];
  const std::int64_t rows = numel(in[0].shape) / k;
  std::vector<double> y(static_cast<std::size_t>(rows * out));
  ref::gemm(false, true, rows, out, k, 1.0, in[0].values.data(), k, 0, in[1].values.data(), k,
            0, 0.0, y.data(), out, 0, 1);
  if (in.size() > 2)
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t o = 0; o < out; ++o) y[r * out + o] += in[2].values[o];
  return y;
}

// conv2d over the inputs (x, weight[, bias]) with options `o`: the direct loop.
inline ReferenceFn conv2d(Conv2dOptions o) {
  return [o](R in) {
    kernels::Conv2dShape s;
    s.n = in[0].shape[0], s.c_in = in[0].shape[1], s.h = in[0].shape[2], s.w = in[0].shape[3];
    s.c_out = in[1].shape[0], s.kh = in[1].shape[2], s.kw = in[1].shape[3];
    s.stride_h = o.stride_h, s.stride_w = o.stride_w, s.pad_h = o.pad_h, s.pad_w = o.pad_w;
    s.dilation_h = o.dilation_h, s.dilation_w = o.dilation_w, s.groups = o.groups;
    std::vector<double> y(static_cast<std::size_t>(s.n * s.c_out * s.out_h() * s.out_w()));
    ref::conv2d(s, in[0].values.data(), in[1].values.data(),
                in.size() > 2 ? in[2].values.data() : nullptr, y.data());
    return y;
  };
}

// conv2d_then over (x, weight, bias[, residual]): the reference convolution, the residual
// added, then ReLU or ReLU6.
inline ReferenceFn conv2d_then(Conv2dOptions o, ConvActivation activation) {
  return [o, activation](R in) {
    const std::vector<RefInput> conv_inputs(in.begin(), in.begin() + 3);
    std::vector<double> y = conv2d(o)(conv_inputs);
    for (std::size_t i = 0; i < y.size(); ++i) {
      double v = y[i] + (in.size() > 3 ? in[3].values[i] : 0.0);
      if (activation == ConvActivation::Relu) v = v > 0 ? v : 0;
      if (activation == ConvActivation::Relu6) v = v < 0 ? 0 : (v > 6 ? 6 : v);
      y[i] = v;
    }
    return y;
  };
}

// conv2d_residual_chain over (x, then w1, b1, w2, b2 for each block): block by block,
// x <- relu(conv(relu(conv(x, w1) + b1), w2) + b2 + x), every convolution with options `o`.
inline ReferenceFn conv2d_residual_chain(Conv2dOptions o) {
  return [o](R in) {
    RefInput x = in[0];
    for (std::size_t k = 1; k + 3 < in.size(); k += 4) {
      const Shape h_shape{x.shape[0], in[k].shape[0], x.shape[2], x.shape[3]};  // padding keeps h, w
      const RefInput h{h_shape, conv2d_then(o, ConvActivation::Relu)({x, in[k], in[k + 1]})};
      x.values = conv2d_then(o, ConvActivation::Relu)({h, in[k + 2], in[k + 3], x});
    }
    return x.values;
  };
}

// inverted_residual_chain over (x, then each block's [expand weight, bias,] depthwise weight,
// bias, project weight, bias): block by block, the reference convolutions with ReLU6 after the
// expand and the depthwise one, the input added after the project where the block says so.
struct InvertedBlockSpec {
  bool expand;
  std::int64_t stride;
  bool residual;
};
inline ReferenceFn inverted_residual_chain(std::vector<InvertedBlockSpec> blocks) {
  return [blocks](R in) {
    RefInput x = in[0];
    std::size_t k = 1;
    Conv2dOptions pointwise, depthwise;
    depthwise.pad_h = depthwise.pad_w = 1;
    for (const InvertedBlockSpec& b : blocks) {
      RefInput e = x;
      if (b.expand) {
        e = {{x.shape[0], in[k].shape[0], x.shape[2], x.shape[3]},
             conv2d_then(pointwise, ConvActivation::Relu6)({x, in[k], in[k + 1]})};
        k += 2;
      }
      depthwise.stride_h = depthwise.stride_w = b.stride;
      depthwise.groups = e.shape[1];
      const Shape d_shape{e.shape[0], e.shape[1], (e.shape[2] - 1) / b.stride + 1, (e.shape[3] - 1) / b.stride + 1};
      const RefInput d{d_shape, conv2d_then(depthwise, ConvActivation::Relu6)({e, in[k], in[k + 1]})};
      std::vector<RefInput> project{d, in[k + 2], in[k + 3]};
      if (b.residual) project.push_back(x);
      x = {{d_shape[0], in[k + 2].shape[0], d_shape[2], d_shape[3]},
           conv2d_then(pointwise, ConvActivation::None)(project)};
      k += 4;
    }
    return x.values;
  };
}

// Sum (or mean) over `axes` (all when empty), one axis at a time, highest first.
inline ReferenceFn sum(std::vector<std::int64_t> axes, bool mean) {
  return [axes, mean](R in) {
    Shape s = in[0].shape;
    std::vector<std::int64_t> ax = axes;
    if (ax.empty())
      for (std::size_t d = 0; d < s.size(); ++d) ax.push_back(static_cast<std::int64_t>(d));
    for (auto& a : ax) a = axis_of(a, s.size());
    std::sort(ax.rbegin(), ax.rend());
    std::vector<double> v = in[0].values;
    double count = 1;
    for (std::int64_t a : ax) {
      const Split p = split(s, a);
      std::vector<double> out(static_cast<std::size_t>(p.outer * p.inner));
      ref::reduce_sum(p.outer, p.size, p.inner, v.data(), out.data());
      v = std::move(out);
      count *= static_cast<double>(s[a]);
      s[a] = 1;
    }
    if (mean)
      for (auto& x : v) x /= count;
    return v;
  };
}

inline ReferenceFn max(std::int64_t axis) {
  return [axis](R in) {
    const Split p = split(in[0].shape, axis_of(axis, in[0].shape.size()));
    std::vector<double> out(static_cast<std::size_t>(p.outer * p.inner));
    ref::reduce_max(p.outer, p.size, p.inner, in[0].values.data(), out.data(), nullptr);
    return out;
  };
}

inline ReferenceFn softmax(std::int64_t axis, bool log) {
  return [axis, log](R in) {
    const Split p = split(in[0].shape, axis_of(axis, in[0].shape.size()));
    std::vector<double> y(in[0].values.size());
    ref::softmax(log, p.outer, p.size, p.inner, in[0].values.data(), y.data());
    return y;
  };
}

// The mean over rows of the per-sample loss.
inline ReferenceFn cross_entropy(std::vector<std::int64_t> labels, double eps) {
  return [labels, eps](R in) {
    const std::int64_t n = in[0].shape[0], c = in[0].shape[1];
    std::vector<double> loss(static_cast<std::size_t>(n)), probs(static_cast<std::size_t>(n * c));
    ref::cross_entropy(n, c, eps, in[0].values.data(), labels.data(), loss.data(), probs.data());
    double total = 0;
    for (double l : loss) total += l;
    return std::vector<double>{total / static_cast<double>(n)};
  };
}

// Reads input 0 through strides (elements) from an offset: expand, transpose, slice.
inline std::vector<double> strided(const RefInput& x, const Shape& out_shape,
                                   const std::vector<std::int64_t>& strides, std::int64_t offset) {
  std::vector<double> y(static_cast<std::size_t>(numel(out_shape)));
  ref::strided_copy(static_cast<int>(out_shape.size()), out_shape.data(), strides.data(),
                    x.values.data() + offset, y.data());
  return y;
}

inline ReferenceFn permute(std::vector<std::int64_t> order) {
  return [order](R in) {
    const std::vector<std::int64_t> in_strides = contiguous_strides(in[0].shape);
    Shape out;
    std::vector<std::int64_t> strides;
    for (std::int64_t o : order) {
      out.push_back(in[0].shape[o]);
      strides.push_back(in_strides[o]);
    }
    return strided(in[0], out, strides, 0);
  };
}

inline ReferenceFn expand(Shape to) {
  return [to](R in) {
    const Shape& s = in[0].shape;
    const std::vector<std::int64_t> in_strides = contiguous_strides(s);
    std::vector<std::int64_t> strides(to.size(), 0);  // 0 along new and size-1 axes
    const std::size_t lead = to.size() - s.size();
    for (std::size_t d = 0; d < s.size(); ++d) strides[lead + d] = s[d] == 1 ? 0 : in_strides[d];
    return strided(in[0], to, strides, 0);
  };
}

// start already normalised and end already clamped by the row.
inline ReferenceFn slice(std::int64_t axis, std::int64_t start, std::int64_t end,
                         std::int64_t step) {
  return [=](R in) {
    Shape out = in[0].shape;
    std::vector<std::int64_t> strides = contiguous_strides(out);
    out[axis] = (end - start + step - 1) / step;
    const std::int64_t offset = start * strides[axis];
    strides[axis] *= step;
    return strided(in[0], out, strides, offset);
  };
}

inline std::vector<double> concat(R in, std::int64_t axis) {
  std::vector<double> y;
  const Split first = split(in[0].shape, axis);
  for (std::int64_t o = 0; o < first.outer; ++o)
    for (const RefInput& part : in) {
      const Split p = split(part.shape, axis);
      const auto* begin = part.values.data() + o * p.size * p.inner;
      y.insert(y.end(), begin, begin + p.size * p.inner);
    }
  return y;
}

inline ReferenceFn index_select(std::int64_t axis, std::vector<std::int64_t> idx) {
  return [axis, idx](R in) {
    const Split p = split(in[0].shape, axis);
    const auto k = static_cast<std::int64_t>(idx.size());
    std::vector<double> y(static_cast<std::size_t>(p.outer * k * p.inner));
    ref::index_select(p.outer, p.size, p.inner, in[0].values.data(), k, idx.data(), y.data());
    return y;
  };
}

}  // namespace op_reference
}  // namespace shrink::testing
