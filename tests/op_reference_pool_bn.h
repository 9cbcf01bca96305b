// Forward references for the op table's pooling, batch-norm and layer-norm rows
// (tests/op_table.h), in double, from the plain loops of kernels/reference/pool.h,
// batch_norm.h and layer_norm.h.
#pragma once
#include <cstdint>
#include <vector>

#include "core/shrink.h"
#include "kernels/reference/batch_norm.h"
#include "kernels/reference/attention.h"
#include "kernels/reference/layer_norm.h"
#include "kernels/reference/pool.h"
#include "tests/op_reference.h"

namespace shrink::testing::op_reference {

// Max or average pooling of input 0 (n, c, h, w) with `o`.
inline ReferenceFn pool2d(kernels::PoolOp op, Pool2dOptions o) {
  return [op, o](R in) {
    const Shape& x = in[0].shape;
    kernels::Pool2dShape s;
    s.n = x[0], s.c = x[1], s.h = x[2], s.w = x[3], s.kh = o.kernel_h, s.kw = o.kernel_w;
    s.stride_h = o.stride_h, s.stride_w = o.stride_w, s.pad_h = o.pad_h, s.pad_w = o.pad_w;
    std::vector<double> y(static_cast<std::size_t>(s.n * s.c * s.out_h() * s.out_w()));
    std::vector<std::int64_t> argmax(y.size());
    ref::pool2d(op, s, in[0].values.data(), y.data(), argmax.data());
    return y;
  };
}

inline ReferenceFn adaptive_avg_pool2d(std::int64_t out_h, std::int64_t out_w) {
  return [out_h, out_w](R in) {
    const Shape& x = in[0].shape;
    std::vector<double> y(static_cast<std::size_t>(x[0] * x[1] * out_h * out_w));
    ref::adaptive_avg_pool2d(x[0] * x[1], x[2], x[3], out_h, out_w, in[0].values.data(), y.data());
    return y;
  };
}

// batch_norm of input 0 (n, c, *), with gamma and beta as inputs 1 and 2 when `affine`;
// evaluation normalises with the given running statistics.
inline ReferenceFn batch_norm(bool training, bool affine, std::vector<double> running_mean = {},
                              std::vector<double> running_var = {}, double eps = 1e-5) {
  return [=](R in) mutable {
    const Shape& x = in[0].shape;
    const std::int64_t n = x[0], c = x[1], hw = numel(x) / (n * c);
    std::vector<double> y(in[0].values.size()), mean(static_cast<std::size_t>(c)), invstd(mean.size());
    ref::batch_norm(n, c, hw, training, 0.1, eps, in[0].values.data(),
                    affine ? in[1].values.data() : nullptr, affine ? in[2].values.data() : nullptr,
                    running_mean.empty() ? nullptr : running_mean.data(),
                    running_var.empty() ? nullptr : running_var.data(), mean.data(), invstd.data(),
                    y.data());
    return y;
  };
}

// layer_norm of input 0 over its last axis, with gamma (input 1) and beta (input 2) when given.
inline ReferenceFn layer_norm(bool gamma, bool beta, double eps = 1e-5) {
  return [=](R in) {
    const std::int64_t dim = in[0].shape.back(), rows = numel(in[0].shape) / dim;
    std::vector<double> y(in[0].values.size());
    ref::layer_norm(rows, dim, eps, in[0].values.data(), gamma ? in[1].values.data() : nullptr,
                    beta ? in[gamma ? 2 : 1].values.data() : nullptr, y.data());
    return y;
  };
}

// scaled_dot_product_attention of inputs q, k, v (..., T, d) and, with `mask`, input 3 broadcast
// to the scores (..., Tq, Tk); scale 0 is 1/sqrt(d).
inline ReferenceFn attention(bool mask, double scale = 0) {
  return [=](R in) {
    const Shape& qs = in[0].shape;
    const int n = static_cast<int>(qs.size());
    const std::int64_t tq = qs[n - 2], d = qs[n - 1], tk = in[1].shape[n - 2], dv = in[2].shape[n - 1];
    const std::int64_t batch = numel(qs) / (tq * d);
    Shape scores = qs;
    scores[n - 1] = tk;
    std::vector<double> m;
    if (mask) {  // the broadcast mask, materialised: right-aligned, size-1 axes repeated
      const Shape& ms = in[3].shape;
      m.resize(static_cast<size_t>(numel(scores)));
      for (std::int64_t flat = 0; flat < numel(scores); ++flat) {
        std::int64_t rest = flat, offset = 0, stride = 1;
        for (int a = n - 1, ma = static_cast<int>(ms.size()) - 1; a >= 0; --a, --ma) {
          const std::int64_t idx = rest % scores[a];
          rest /= scores[a];
          if (ma < 0) continue;
          if (ms[ma] != 1) offset += idx * stride;
          stride *= ms[ma];
        }
        m[flat] = in[3].values[offset];
      }
    }
    std::vector<double> y(static_cast<size_t>(batch * tq * dv));
    const double s = scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(d));
    ref::attention(batch, tq, tk, d, dv, s, in[0].values.data(), in[1].values.data(), in[2].values.data(),
                   mask ? m.data() : nullptr, y.data());
    return y;
  };
}

// multi_head_attention of inputs q (B, Tq, heads d), k (B, Tk, heads d), v (B, Tk, heads dv)
// (and, with `mask`, input 3 broadcast to (B, heads, Tq, Tk)): the heads split out by hand into
// (B, heads, T, f), attention() above, and merged back into (B, Tq, heads dv).
inline ReferenceFn multi_head_attention(std::int64_t heads, bool mask) {
  const auto split = [heads](const RefInput& x) {
    const std::int64_t b = x.shape[0], t = x.shape[1], f = x.shape[2] / heads;
    RefInput out{{b, heads, t, f}, std::vector<double>(x.values.size())};
    for (std::int64_t i = 0; i < b; ++i)
      for (std::int64_t j = 0; j < t; ++j)
        for (std::int64_t h = 0; h < heads; ++h)
          for (std::int64_t c = 0; c < f; ++c)
            out.values[((i * heads + h) * t + j) * f + c] = x.values[(i * t + j) * heads * f + h * f + c];
    return out;
  };
  return [=](R in) {
    std::vector<RefInput> split_in = {split(in[0]), split(in[1]), split(in[2])};
    if (mask) split_in.push_back(in[3]);
    const std::vector<double> y = attention(mask)(split_in);
    const std::int64_t b = in[0].shape[0], tq = in[0].shape[1], dv = in[2].shape[2] / heads;
    std::vector<double> merged(y.size());
    for (std::int64_t i = 0; i < b; ++i)
      for (std::int64_t h = 0; h < heads; ++h)
        for (std::int64_t j = 0; j < tq; ++j)
          for (std::int64_t c = 0; c < dv; ++c)
            merged[(i * tq + j) * heads * dv + h * dv + c] = y[((i * heads + h) * tq + j) * dv + c];
    return merged;
  };
}

}  // namespace shrink::testing::op_reference
