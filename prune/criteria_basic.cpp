// Score-based criteria (magnitude, random, Taylor), top-k, and the helpers the
// selection-based criteria share.
#include <algorithm>
#include <map>
#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/sequential.h"
#include "prune/activation_memo.h"
#include "prune/criteria.h"
#include "prune/tap.h"

namespace shrink::prune {

std::vector<std::int64_t> top_k(const Scores& scores, std::int64_t k) {
  const auto n = static_cast<std::int64_t>(scores.size());
  SHRINK_CHECK(k >= 0 && k <= n, "top_k: k = ", k, " is outside [0, ", n, "]");
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (k == 0 || k == n) {
    order.resize(static_cast<std::size_t>(k));
    return order;
  }
  // A strict total order: larger score first, NaN after every number, equal scores (and NaNs)
  // lower index first. Being total, the k first of it are one set whichever selection
  // algorithm finds them: nth_element's O(n) partition instead of sorting all n.
  const auto before = [&](std::int64_t a, std::int64_t b) {
    const double sa = scores[static_cast<std::size_t>(a)], sb = scores[static_cast<std::size_t>(b)];
    const bool na = std::isnan(sa), nb = std::isnan(sb);
    if (na != nb) return nb;
    if (!na && sa != sb) return sa > sb;
    return a < b;
  };
  std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), before);
  order.resize(static_cast<std::size_t>(k));
  std::sort(order.begin(), order.end());
  return order;
}

Scores score_magnitude(const nn::Module& model, const Group& group, int p) {
  SHRINK_CHECK(p == 1 || p == 2, "score_magnitude: p must be 1 (L1) or 2 (L2), got ", p);
  // Each unit's incoming weights: every producer's filter (a residual stream has several; a
  // unit's norm is then that of all its filters together). The input group has no
  // producer: its units' weights are the consumer's columns.
  std::vector<std::string> owners = group.producers;
  if (group.is_input()) owners = {group.consumer};
  Scores total;
  for (const std::string& owner : owners) {
    const std::string weight = owner + ".weight";
    const auto member = std::find_if(group.members.begin(), group.members.end(),
                                     [&](const Member& m) { return m.tensor == weight; });
    SHRINK_CHECK(member != group.members.end(), "score_magnitude: group '", group.name, "' has no member '",
                 weight, "' (", group.is_input() ? "the consumer's" : "a producer's", " weight)");
    // One pass over the weight on its device (kernel unit_norm, summed in double); only the
    // per-unit norms come back to the host.
    const Scores part = unit_norms(model.parameter(member->tensor), member->axis, p).to_vector<double>();
    if (total.empty()) total.assign(static_cast<std::size_t>(group.size), 0.0);
    // A flattened read (block > 1) holds a unit's weights in `block` consecutive slices.
    for (std::size_t i = 0; i < part.size(); ++i) {
      const std::size_t unit = i / static_cast<std::size_t>(member->block);
      total[unit] += p == 1 ? part[i] : part[i] * part[i];
    }
  }
  if (p == 2)
    for (double& t : total) t = std::sqrt(t);
  return total;
}

Scores score_random(const Group& group, Generator& gen) {
  SHRINK_CHECK(group.size > 0, "score_random: group '", group.name, "' has no units");
  Scores scores(static_cast<std::size_t>(group.size));
  for (double& s : scores) s = gen.next_double();
  return scores;
}

namespace {

// activation x dLoss/dactivation at each consumer's read of `group` (one tensor per consumer,
// shaped as the read), Loss = mean cross-entropy of the model's logits on the calibration batch.
std::vector<Tensor> read_times_gradient(nn::Module& model, const Group& group, const Calibration& calib,
                                        const char* who) {
  SHRINK_CHECK(grad_enabled(), who, ": needs gradients, but a NoGradGuard is alive");
  SHRINK_CHECK(!group.reads.empty(), who, ": group '", group.name, "' has no consumer");
  EvalMode eval(model);
  FrozenParameters frozen(model);
  // Every consumer's output is recomputed from its input plus a zero leaf, so one backward
  // pass gives dLoss/d(what each consumer reads) in that leaf's gradient while the input
  // itself stays connected: a residual stream is read at several depths, and a read's
  // gradient must still flow back through the reads before it.
  struct Read {
    Tensor value, zero;
    bool inside = false;
  };
  std::map<std::string, Read> reads;
  std::vector<std::string> live;  // the consumers must really run: their hooks plant the leaves
  for (const ConsumerRead& r : group.reads) live.push_back(r.consumer);
  const std::vector<nn::HookHandle> reuse = calib.memo ? calib.memo->attach(model, live) : std::vector<nn::HookHandle>{};
  std::vector<nn::HookHandle> hooks;
  for (const ConsumerRead& r : group.reads) {
    reads[r.consumer];
    hooks.push_back(model.child(r.consumer)->register_forward_hook(
        [&reads, name = r.consumer](nn::Module& m, const Tensor& in, Tensor& out) {
          Read& read = reads.at(name);
          if (read.inside || read.zero.defined()) return;
          read.inside = true;
          read.value = in.detach();
          read.zero = Tensor::zeros(in.shape(), in.dtype(), in.device());
          read.zero.requires_grad_();
          out = m(in + read.zero);
          read.inside = false;
        }));
  }
  cross_entropy(model(calib.inputs), calib.labels).backward();
  std::vector<Tensor> products;
  for (const auto& [name, read] : reads) {
    SHRINK_CHECK(read.zero.defined() && read.zero.grad().defined(), who, ": no gradient reached the input of '", name,
                 "' (group '", group.name, "')");
    products.push_back(read.value * read.zero.grad());
  }
  return products;
}

}  // namespace

Scores score_taylor(nn::Module& model, const Group& group, const Calibration& calib) {
  Scores scores(static_cast<std::size_t>(group.size), 0.0);
  // A residual stream's units' scores add over its reads.
  for (const Tensor& product : read_times_gradient(model, group, calib, "score_taylor")) {
    // Molchanov et al. 2017, eq. 8 summed over the batch: |sum_n,pos a * dL/da|.
    const Tensor units = unit_view(product, group.size);
    const Scores part = sum_per_channel(units, channel_axis(units, group.size));
    for (std::size_t j = 0; j < scores.size(); ++j) scores[j] += std::abs(part[j]);
  }
  return scores;
}

Scores score_head_importance(nn::Module& model, const Group& group, const Calibration& calib) {
  Scores scores(static_cast<std::size_t>(group.size), 0.0);
  for (const Tensor& product : read_times_gradient(model, group, calib, "score_head_importance")) {
    // With a mask xi_h on unit h's output, dL_n/dxi_h = sum over the unit's positions and
    // entries of a * dL_n/da (at xi = 1). The loss is a mean over the batch and eval mode
    // couples no samples, so sample n's share of the gradient is its own, over N.
    const std::int64_t n = product.size(0), units = group.size;
    Tensor per_sample;  // (N, units)
    if (product.dim() == 4) {
      per_sample = sum(product, {2, 3});
    } else {
      const std::int64_t width = product.size(product.dim() - 1);
      SHRINK_CHECK(width % units == 0, "score_head_importance: a read of shape ", shape_str(product.shape()),
                   " does not hold ", units, " units in equal blocks");
      per_sample = sum(reshape(product, {n, -1, units, width / units}), {1, 3});
    }
    // Michel et al. 2019, eq. 2: I_h = E_x |dL(x)/dxi_h|.
    const std::vector<double> v = sum(abs(per_sample), {0}).to(DType::Float64).to_vector<double>();
    for (std::size_t j = 0; j < scores.size(); ++j) scores[j] += v[j];
  }
  return scores;
}

// ---- helpers ----

std::int64_t channel_axis(const Tensor& activation, std::int64_t units) {
  SHRINK_CHECK(activation.dim() >= 2, "channel_axis: activation ", shape_str(activation.shape()),
               " has no batch and channel axes");
  const std::int64_t axis = activation.dim() == 4 ? 1 : activation.dim() - 1;
  SHRINK_CHECK(activation.size(axis) == units, "channel_axis: activation ",
               shape_str(activation.shape()), " has ", activation.size(axis),
               " channels on axis ", axis, ", the group has ", units);
  return axis;
}

Scores sum_per_channel(const Tensor& t, std::int64_t axis) {
  std::vector<std::int64_t> others;
  for (std::int64_t a = 0; a < t.dim(); ++a)
    if (a != axis) others.push_back(a);
  const Tensor s = others.empty() ? t : sum(t.detach(), others);
  return s.to(Device::cpu()).to(DType::Float64).to_vector<double>();
}

std::vector<std::string> chain_names(const nn::Module& model) {
  const auto* chain = dynamic_cast<const nn::Sequential*>(&model);
  SHRINK_CHECK(chain != nullptr && chain->size() > 0, "criteria: the model is a ",
               model.type_name(), "; this criterion supports non-empty feed-forward chains (Sequential)");
  std::vector<std::string> names;
  for (const auto& [name, layer] : chain->named_children()) names.push_back(name);
  return names;
}

std::string next_in_chain(const nn::Module& model, const std::string& name) {
  const auto names = chain_names(model);
  const auto at = std::find(names.begin(), names.end(), name);
  SHRINK_CHECK(at != names.end(), "criteria: the model has no layer '", name, "'");
  return at + 1 == names.end() ? std::string() : *(at + 1);
}

Tensor unit_view(const Tensor& read, std::int64_t units) {
  // A conv map, or channels last already: as it is.
  if (read.dim() == 4 || read.dim() < 2 || read.size(read.dim() - 1) == units) return read;
  const std::int64_t width = read.size(read.dim() - 1);
  SHRINK_CHECK(units > 0 && width % units == 0, "criteria: a read of shape ", shape_str(read.shape()),
               " does not hold ", units, " units in equal blocks");
  // (N, units * block), or (N, T, units * block) (attention heads), as rows of units.
  return reshape(read, {read.numel() / width, units, width / units, 1});
}

std::vector<Tensor> consumer_reads(nn::Module& model, const Group& group, const Tensor& inputs,
                                   std::int64_t batch_size) {
  SHRINK_CHECK(batch_size > 0, "criteria: batch_size must be > 0, got ", batch_size);
  SHRINK_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
               "criteria: calibration inputs are empty");
  SHRINK_CHECK(!group.consumer.empty(), "criteria: group '", group.name, "' has no consumer");
  std::vector<Tensor> batches;
  const std::int64_t n = inputs.size(0);
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const Tensor xb = slice(inputs, 0, start, std::min(n, start + batch_size));
    batches.push_back(capture(model, xb, {group.consumer}).at(group.consumer).input.detach());
  }
  return batches;
}

std::vector<Tensor> group_activation(nn::Module& model, const Group& group, const Tensor& inputs,
                                     std::int64_t batch_size) {
  std::vector<Tensor> batches = consumer_reads(model, group, inputs, batch_size);
  const std::int64_t units = group_size(model, group);
  for (Tensor& b : batches) b = unit_view(b, units);
  return batches;
}

FrozenParameters::FrozenParameters(const nn::Module& model) {
  for (Tensor p : model.parameters())
    if (p.requires_grad()) {
      p.requires_grad_(false);
      frozen_.push_back(p);
    }
}

FrozenParameters::~FrozenParameters() {
  for (Tensor& p : frozen_) p.requires_grad_(true);
}

}  // namespace shrink::prune
