// softmax, log_softmax and the fused cross-entropy loss.
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace {

Tensor softmax_impl(const Tensor& x, std::int64_t axis_in, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_floating(name, x);
  const int axis = normalize_axis(name, axis_in, x.dim());
  const AxisView v = axis_view(x.shape(), axis);
  Tensor y = empty_like(x);
  if (y.numel() > 0)
    backend_of(x).softmax(x.dtype(), log, v.outer, v.dim, v.inner, x.raw_data(), y.raw_data());
  if (needs_grad({&x})) {
    record(y, name, {x}, [v, log, y = y.detach()](const Tensor& g) {
      Tensor dx = empty_like(g);
      if (dx.numel() > 0)
        backend_of(g).softmax_backward(g.dtype(), log, v.outer, v.dim, v.inner, y.raw_data(),
                                       g.raw_data(), dx.raw_data());
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, std::int64_t axis) { return softmax_impl(x, axis, false); }
Tensor log_softmax(const Tensor& x, std::int64_t axis) { return softmax_impl(x, axis, true); }

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double smoothing) {
  check_floating("cross_entropy", logits);
  check_defined("cross_entropy", labels);
  SHRINK_CHECK(logits.dim() == 2, "cross_entropy: logits must be (batch, classes), got ",
               shape_str(logits.shape()));
  SHRINK_CHECK(labels.dtype() == DType::Int64, "cross_entropy: labels must be int64 class "
               "indices, got ", dtype_name(labels.dtype()));
  SHRINK_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0), "cross_entropy: labels ",
               shape_str(labels.shape()), " do not match logits ", shape_str(logits.shape()));
  SHRINK_CHECK(labels.device() == logits.device(), "cross_entropy: logits on ",
               logits.device().str(), " but labels on ", labels.device().str());
  SHRINK_CHECK(smoothing >= 0 && smoothing <= 1, "cross_entropy: label_smoothing must be in "
               "[0, 1], got ", smoothing);
  const std::int64_t n = logits.size(0), c = logits.size(1);
  SHRINK_CHECK(n > 0, "cross_entropy: empty batch");
  for (std::int64_t label : labels.to_vector<std::int64_t>())
    SHRINK_CHECK(label >= 0 && label < c, "cross_entropy: label ", label,
                 " is out of range for ", c, " classes");

  Tensor per_sample = empty_like(logits, {n});
  Tensor probs = empty_like(logits);
  backend_of(logits).cross_entropy(logits.dtype(), n, c, smoothing, logits.raw_data(),
                                   static_cast<const std::int64_t*>(labels.raw_data()),
                                   per_sample.raw_data(), probs.raw_data());
  Tensor loss;
  {
    NoGradGuard no_grad;
    loss = mean(per_sample);
  }
  if (needs_grad({&logits})) {
    record(loss, "cross_entropy", {logits}, [probs, labels, n, c, smoothing](const Tensor& g) {
      Tensor dx = empty_like(probs);
      backend_of(probs).cross_entropy_backward(
          probs.dtype(), n, c, smoothing, g.item() / static_cast<double>(n), probs.raw_data(),
          static_cast<const std::int64_t*>(labels.raw_data()), dx.raw_data());
      return std::vector<Tensor>{dx};
    });
  }
  return loss;
}

}  // namespace shrink
