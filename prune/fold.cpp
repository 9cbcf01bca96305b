// The shift fold of prune/slice.h (fold_removed_shift): what a removed unit would still
// emit with its incoming weights masked, moved into its consumers before the cut.
#include <algorithm>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "prune/slice.h"

namespace shrink::prune {

namespace {

// A constant map wide enough that the centre of every elementwise layer's output (a
// depthwise 3x3 or 5x5 conv, a pool) sees only interior windows.
constexpr std::int64_t kSide = 17;

// What each unit emits at `read`'s consumer when its producer's weights are zero: the
// producer's bias (or 0) run through the elementwise modules on the way, read at the centre.
std::vector<double> emitted(nn::Module& model, const Group& group, const ConsumerRead& read) {
  nn::Module& producer = *model.child(group.producer);
  const Tensor& weight = producer.parameter("weight");
  const std::int64_t units = group.size;
  std::vector<double> bias(static_cast<std::size_t>(units), 0.0);
  if (producer.has_parameter("bias")) bias = producer.parameter("bias").to(DType::Float64).to(Device::cpu()).to_vector<double>();
  const bool map = weight.dim() == 4;
  const std::int64_t side = map ? kSide : 1;
  std::vector<double> host;
  host.reserve(static_cast<std::size_t>(units * side * side));
  for (double b : bias) host.insert(host.end(), static_cast<std::size_t>(side * side), b);
  const Shape shape = map ? Shape{1, units, side, side} : Shape{1, units};
  Tensor x = Tensor::from_vector(host, shape).to(weight.dtype()).to(weight.device());
  NoGradGuard no_grad;
  for (const std::string& step : read.path) x = (*model.child(step))(x);
  x = x.to(DType::Float64).to(Device::cpu());
  SHRINK_CHECK(x.dim() == static_cast<std::int64_t>(shape.size()) && x.size(1) == units, "fold: the layers after '",
               group.producer, "' turned ", units, " channels into shape ", shape_str(x.shape()));
  const auto all = x.to_vector<double>();
  std::vector<double> out(static_cast<std::size_t>(units));
  if (!map) return all;
  const std::int64_t h = x.size(2), w = x.size(3);
  for (std::int64_t c = 0; c < units; ++c) out[static_cast<std::size_t>(c)] = all[static_cast<std::size_t>((c * h + h / 2) * w + w / 2)];
  return out;
}

// delta[o] = sum over removed units u, their block's columns j and the kernel of
// W[o, u*block + j, ...] * emitted[u].
std::vector<double> consumer_shift(const Tensor& weight, const std::vector<double>& value,
                                   const std::vector<bool>& removed, std::int64_t block) {
  const std::int64_t out = weight.size(0), in = weight.size(1);
  const std::int64_t taps = weight.numel() / (out * in);
  const auto w = weight.to(DType::Float64).to(Device::cpu()).to_vector<double>();
  std::vector<double> delta(static_cast<std::size_t>(out), 0.0);
  for (std::int64_t o = 0; o < out; ++o)
    for (std::int64_t i = 0; i < in; ++i) {
      const auto u = static_cast<std::size_t>(i / block);
      if (!removed[u] || value[u] == 0.0) continue;
      const double* row = &w[static_cast<std::size_t>((o * in + i) * taps)];
      double sum = 0;
      for (std::int64_t k = 0; k < taps; ++k) sum += row[k];
      delta[static_cast<std::size_t>(o)] += sum * value[u];
    }
  return delta;
}

Tensor like(const std::vector<double>& values, const Tensor& model_tensor) {
  return Tensor::from_vector(values, {static_cast<std::int64_t>(values.size())})
      .to(model_tensor.dtype())
      .to(model_tensor.device());
}

}  // namespace

bool fold_removed_shift(nn::Module& model, const Group& group, const std::vector<std::int64_t>& kept) {
  if (group.is_input() || group.residual || group.producer.empty() || group.reads.empty()) return false;
  for (const ConsumerRead& read : group.reads) {
    if (!read.foldable) return false;
    nn::Module& consumer = *model.child(read.consumer);
    const Tensor& w = consumer.parameter("weight");
    // A grouped consumer's columns are not the group's channels; its groups are 1 here
    // (a depthwise conv is elementwise, so never a consumer).
    if (w.size(1) != group.size * read.block) return false;
    if (!consumer.has_parameter("bias") && read.norm_after.empty()) return false;
  }
  std::vector<bool> removed(static_cast<std::size_t>(group.size), true);
  for (std::int64_t k : kept) removed[static_cast<std::size_t>(k)] = false;
  if (std::none_of(removed.begin(), removed.end(), [](bool r) { return r; })) return true;
  const bool was_training = model.is_training();
  model.eval();
  for (const ConsumerRead& read : group.reads) {
    const std::vector<double> value = emitted(model, group, read);
    nn::Module& consumer = *model.child(read.consumer);
    const std::vector<double> delta = consumer_shift(consumer.parameter("weight"), value, removed, read.block);
    if (consumer.has_parameter("bias")) {
      const Tensor& b = consumer.parameter("bias");
      Tensor fresh = add(b.detach(), like(delta, b));
      if (b.grad().defined()) fresh.set_grad(b.grad());
      consumer.set_parameter("bias", fresh);
    } else {
      nn::Module& norm = *model.child(read.norm_after);
      const Tensor& mean = norm.buffer("running_mean");
      norm.set_buffer("running_mean", sub(mean, like(delta, mean)));
    }
  }
  model.train(was_training);
  return true;
}

}  // namespace shrink::prune
