#include "prune/refit.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "prune/patches.h"

namespace shrink::prune {

namespace {

// At most this many rows (image positions) enter a conv consumer's least squares: the
// unfolded patches of 1024 calibration images at 32x32 would be a million rows; an even
// stride through them keeps the fit's cost bounded and its rows spread over the images.
constexpr std::int64_t kMaxRows = 1 << 17;

// The consumer as a matrix: a Linear's (out, in) weight, or a conv's kernel as
// (out, in * kh * kw) acting on unfolded patches (prune/patches.h).
struct Consumer {
  nn::Module& module;
  const nn::Conv2d* conv = nullptr;
  std::string name;
  Tensor weight() const { const Tensor& w = module.parameter("weight"); return reshape(w.detach(), {w.size(0), -1}); }
  Tensor bias() const { return module.has_parameter("bias") ? module.parameter("bias").detach() : Tensor(); }
  std::int64_t outputs() const { return module.parameter("weight").size(0); }
  // What the consumer reads as rows of the least squares, every stride-th (convs).
  Tensor design(const Tensor& read, std::int64_t stride) const {
    if (conv) return unfold_patches(read, *conv, stride).to(read.device());
    return read.dim() == 2 ? read : reshape(read, {-1, read.size(read.dim() - 1)});  // a row per token
  }
};

// The views of every layer reading `group`, in call order.
std::vector<Group> read_views(const Group& group) {
  SHRINK_CHECK(!group.reads.empty(), "refit: group '", group.name, "' has no consumer");
  std::vector<Group> views;
  for (const ConsumerRead& r : group.reads) views.push_back(consumer_view(group, r));
  return views;
}

Consumer consumer_of(nn::Module& model, const Group& group) {
  nn::Module& layer = *model.child(group.consumer);
  Consumer c{layer, dynamic_cast<const nn::Conv2d*>(&layer), group.consumer};
  SHRINK_CHECK(dynamic_cast<const nn::Linear*>(&layer) != nullptr || (c.conv && c.conv->groups() == 1), "refit: group '",
               group.name, "': its consumer '", group.consumer, "' is a ", layer.type_name(),
               "; the refit solves Linear and ungrouped Conv2d consumers");
  return c;
}

// What the consumer reads on the calibration batch, on the network as it is now (whole:
// a flattened map's units are blocks of columns; the refit solves every column).
Tensor activations(nn::Module& model, const Group& group, const Calibration& calib, std::int64_t batch_size) {
  const std::vector<Tensor> parts = consumer_reads(model, group, calib.inputs, batch_size);
  return parts.size() == 1 ? parts.front() : concat(parts, 0);
}

std::int64_t stride_of(const Consumer& c, const Tensor& output) {
  return c.conv ? row_stride(output.numel() / output.size(1), kMaxRows) : 1;
}

// g + value * I, in place on the CPU (a (k+1)^2 identity would cost as much as the Gram
// matrix), through a host-built identity elsewhere.
Tensor add_to_diagonal(Tensor g, double value) {
  const std::int64_t n = g.size(0);
  if (g.device().is_cpu()) {
    if (g.dtype() == DType::Float32) {
      float* p = g.data<float>();
      for (std::int64_t i = 0; i < n; ++i) p[i * n + i] += static_cast<float>(value);
    } else {
      double* p = g.data<double>();
      for (std::int64_t i = 0; i < n; ++i) p[i * n + i] += value;
    }
    return g;
  }
  std::vector<double> eye(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t i = 0; i < n; ++i) eye[static_cast<std::size_t>(i * n + i)] = value;
  return g + Tensor::from_vector(eye, {n, n}).to(g.dtype()).to(g.device());
}

}  // namespace

DenseTargets capture_dense_targets(nn::Module& model, const std::vector<Group>& groups, const Calibration& calib,
                                   std::int64_t batch_size) {
  NoGradGuard no_grad;
  DenseTargets dense;
  for (const Group& g : groups) {
    for (const Group& view : read_views(g)) {
      Consumer consumer = consumer_of(model, view);
      const Tensor y = consumer.module(activations(model, view, calib, batch_size));
      dense.strides[view.consumer] = stride_of(consumer, y);
      dense.outputs[view.consumer] = output_rows(y, dense.strides[view.consumer]);
    }
    dense.units[g.name] = group_size(model, g);
  }
  return dense;
}

namespace {

// The refit of one consumer (`view` reads the group through that layer alone).
struct ConsumerFit {
  double squared_before = 0, squared_after = 0;  // summed over the output rows and columns
  double elements = 0;
  double lambda = 0;
};

ConsumerFit refit_one(nn::Module& model, const Group& view, const std::vector<Group>& groups,
                      const DenseTargets& dense, const Calibration& calib, double ridge, nn::Optimizer* optimizer,
                      std::int64_t batch_size) {
  const auto found = dense.outputs.find(view.consumer);
  SHRINK_CHECK(found != dense.outputs.end(), "refit: no dense output was captured for group '", view.name,
               "' at its consumer '", view.consumer, "'");
  const Consumer consumer = consumer_of(model, view);
  const Tensor read = activations(model, view, calib, batch_size);
  const std::int64_t outputs = consumer.outputs();
  // The rows kept of the consumer's output map: the same stride as the dense capture's.
  Tensor y = found->second;
  const std::int64_t stride = dense.strides.count(view.consumer) ? dense.strides.at(view.consumer) : 1;
  const Tensor h = consumer.design(read, stride);
  const std::int64_t samples = h.size(0), units = h.size(1);

  // The dense output's columns for the consumer's remaining outputs (the units of the group
  // it produces that are still there).
  for (const Group& next : groups)
    if (std::find(next.producers.begin(), next.producers.end(), view.consumer) != next.producers.end() &&
        !next.original.empty())
      y = index_select(y, 1, Tensor::from_vector(next.original, {static_cast<std::int64_t>(next.original.size())},
                                                 y.device()));
  SHRINK_CHECK(y.size(0) == samples && y.size(1) == outputs, "refit: group '", view.name, "': the dense output ",
               shape_str(y.shape()), " of consumer '", view.consumer, "' does not match ", samples,
               " rows and its ", outputs, " outputs (was the calibration batch changed after the capture?)");

  const bool bias = consumer.bias().defined();
  const Tensor a = bias ? concat({h, Tensor::ones({samples, 1}, h.dtype(), h.device())}, 1) : h;
  const Tensor w0 = bias ? concat({consumer.weight(), reshape(consumer.bias(), {outputs, 1})}, 1) : consumer.weight();
  const Tensor residual = y - shrink::linear(a, w0, Tensor());  // (N, out)
  const Tensor at = transpose(a, 0, 1);                         // (k+1, N)
  const std::int64_t n = a.size(1);
  const double trace = sum(square(a)).item();  // trace(A^T A) = ||A||_F^2
  ConsumerFit fit;
  fit.lambda = trace > 0 ? ridge * trace / static_cast<double>(std::min(n, samples)) : ridge;
  // (W - W0)^T, (k+1, out), from whichever system is smaller. With fewer samples than
  // columns, the push-through identity (A^T A + lambda I)^-1 A^T = A^T (A A^T + lambda I)^-1
  // gives the same change from an (N, N) system: N^2 k work instead of k^2 N + k^3 / 3.
  const Tensor change =
      samples < n ? matmul(at, cholesky_solve(add_to_diagonal(matmul(a, at), fit.lambda), residual))
                  : cholesky_solve(add_to_diagonal(matmul(at, a), fit.lambda), matmul(at, residual));
  const Tensor w = w0 + transpose(change, 0, 1);
  fit.elements = static_cast<double>(residual.numel());
  fit.squared_before = sum(square(residual)).item();
  fit.squared_after = sum(square(y - shrink::linear(a, w, Tensor()))).item();

  const std::string weight_name = view.consumer + ".weight", bias_name = view.consumer + ".bias";
  model.set_parameter(weight_name, reshape(shrink::slice(w, 1, 0, units), model.parameter(weight_name).shape()));
  if (bias) model.set_parameter(bias_name, reshape(shrink::slice(w, 1, units, units + 1), {outputs}));
  if (optimizer) {
    for (const std::string& name : {weight_name, bias_name}) {
      if (!model.has_parameter(name)) continue;
      optimizer->set_parameter(name, model.parameter(name));
      optimizer->restart(name);
    }
  }
  return fit;
}

}  // namespace

RefitResult refit_consumer(nn::Module& model, const Group& group, const std::vector<Group>& groups,
                           const DenseTargets& dense, const Calibration& calib, double ridge,
                           nn::Optimizer* optimizer, std::int64_t batch_size) {
  SHRINK_CHECK(std::isfinite(ridge) && ridge > 0, "refit: the ridge must be a positive number, got ", ridge);
  NoGradGuard no_grad;
  // In call order, each consumer on the network as the previous refits left it: a ResNet
  // stage's stream is the sum of the blocks before, so what layer1.1.conv1 reads depends on
  // layer1.0's refit weights (the same reason groups are refit input to output).
  double before = 0, after = 0, elements = 0;
  RefitResult result;
  for (const Group& view : read_views(group)) {
    const ConsumerFit fit = refit_one(model, view, groups, dense, calib, ridge, optimizer, batch_size);
    before += fit.squared_before, after += fit.squared_after, elements += fit.elements;
    result.lambda = std::max(result.lambda, fit.lambda);
  }
  result.error_before = before / elements;
  result.error_after = after / elements;
  return result;
}

}  // namespace shrink::prune
