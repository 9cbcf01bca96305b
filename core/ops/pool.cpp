// max_pool2d, avg_pool2d and adaptive_avg_pool2d over NCHW (kernels pool2d and
// adaptive_avg_pool2d, kernels/cpu/pool.cpp). Max pooling keeps the forward's argmax (int64,
// shaped like y) for its backward, so the gradient goes to the window's first maximum.
// Pooling counts no FLOPs (core/flop_counter.h: elementwise work and reductions are free).
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace {

std::string pair_str(std::int64_t a, std::int64_t b) {
  return std::to_string(a) + "x" + std::to_string(b);
}

// The kernel's shape for x (n, c, h, w) and `o`, after PyTorch's checks.
kernels::Pool2dShape pool_shape(const char* op, const Tensor& x, const Pool2dOptions& o) {
  check_floating(op, x);
  SHRINK_CHECK(x.dim() == 4, op, ": x must be 4-D (n, c, h, w), got ", shape_str(x.shape()));
  SHRINK_CHECK(o.kernel_h > 0 && o.kernel_w > 0, op, ": kernel size must be positive, got ",
               pair_str(o.kernel_h, o.kernel_w));
  SHRINK_CHECK(o.stride_h > 0 && o.stride_w > 0, op, ": stride must be positive, got ",
               pair_str(o.stride_h, o.stride_w));
  SHRINK_CHECK(o.pad_h >= 0 && o.pad_w >= 0, op, ": padding must be non-negative, got ",
               pair_str(o.pad_h, o.pad_w));
  // PyTorch's rule: every window then holds at least one value of the input.
  SHRINK_CHECK(2 * o.pad_h <= o.kernel_h && 2 * o.pad_w <= o.kernel_w, op, ": padding ",
               pair_str(o.pad_h, o.pad_w), " must be at most half the kernel ",
               pair_str(o.kernel_h, o.kernel_w));
  const std::int64_t h = x.size(2), w = x.size(3);
  SHRINK_CHECK(h > 0 && w > 0, op, ": x ", shape_str(x.shape()), " has an empty plane");
  SHRINK_CHECK(h + 2 * o.pad_h >= o.kernel_h && w + 2 * o.pad_w >= o.kernel_w, op, ": kernel ",
               pair_str(o.kernel_h, o.kernel_w), " is larger than the padded input ",
               pair_str(h + 2 * o.pad_h, w + 2 * o.pad_w), " of x ", shape_str(x.shape()),
               " (padding ", pair_str(o.pad_h, o.pad_w), ")");
  kernels::Pool2dShape s;
  s.n = x.size(0);
  s.c = x.size(1);
  s.h = h;
  s.w = w;
  s.kh = o.kernel_h;
  s.kw = o.kernel_w;
  s.stride_h = o.stride_h;
  s.stride_w = o.stride_w;
  s.pad_h = o.pad_h;
  s.pad_w = o.pad_w;
  return s;
}

Tensor pool2d(kernels::PoolOp op, const char* name, const Tensor& x, const Pool2dOptions& o) {
  const kernels::Pool2dShape s = pool_shape(name, x, o);
  Tensor y = empty_like(x, {s.n, s.c, s.out_h(), s.out_w()});
  Tensor argmax;  // (n, c, out_h, out_w) input positions within each plane, max only
  if (op == kernels::PoolOp::Max) argmax = Tensor::empty(y.shape(), DType::Int64, x.device());
  auto* at = argmax.defined() ? static_cast<std::int64_t*>(argmax.raw_data()) : nullptr;
  if (y.numel() > 0) backend_of(x).pool2d(op, x.dtype(), s, x.raw_data(), y.raw_data(), at);
  if (needs_grad({&x})) {
    record(y, name, {x}, [op, s, argmax, x_shape = x.shape()](const Tensor& g) {
      Tensor dx = empty_like(g, x_shape);
      if (dx.numel() > 0) {
        auto* from = argmax.defined() ? static_cast<const std::int64_t*>(argmax.raw_data()) : nullptr;
        backend_of(g).pool2d_backward(op, g.dtype(), s, g.raw_data(), from, dx.raw_data());
      }
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& o) {
  return pool2d(kernels::PoolOp::Max, "max_pool2d", x, o);
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& o) {
  return pool2d(kernels::PoolOp::Average, "avg_pool2d", x, o);
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::int64_t out_h, std::int64_t out_w) {
  const char* op = "adaptive_avg_pool2d";
  check_floating(op, x);
  SHRINK_CHECK(x.dim() == 4, op, ": x must be 4-D (n, c, h, w), got ", shape_str(x.shape()));
  SHRINK_CHECK(out_h > 0 && out_w > 0, op, ": output size must be positive, got ",
               pair_str(out_h, out_w), " for x ", shape_str(x.shape()));
  const std::int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  SHRINK_CHECK(h > 0 && w > 0, op, ": x ", shape_str(x.shape()), " has an empty plane");
  Tensor y = empty_like(x, {n, c, out_h, out_w});
  if (y.numel() > 0)
    backend_of(x).adaptive_avg_pool2d(x.dtype(), n * c, h, w, out_h, out_w, x.raw_data(),
                                      y.raw_data());
  if (needs_grad({&x})) {
    record(y, op, {x}, [n, c, h, w, out_h, out_w](const Tensor& g) {
      Tensor dx = empty_like(g, {n, c, h, w});
      if (dx.numel() > 0)
        backend_of(g).adaptive_avg_pool2d_backward(g.dtype(), n * c, h, w, out_h, out_w,
                                                   g.raw_data(), dx.raw_data());
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace shrink
