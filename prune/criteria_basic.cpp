// Score-based criteria (magnitude, random, Taylor), top-k, and the helpers the
// selection-based criteria share.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/sequential.h"
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

namespace {

// The member whose slices magnitude scores: the producer's weight (its incoming weights); the
// input group has no producer, so its units' weights are the consumer's columns.
const Member& magnitude_member(const Group& group) {
  const std::string weight = (group.is_input() ? group.consumer : group.producer) + ".weight";
  const auto member = std::find_if(group.members.begin(), group.members.end(),
                                   [&](const Member& m) { return m.tensor == weight; });
  SHRINK_CHECK(member != group.members.end(), "score_magnitude: group '", group.name,
               "' has no member '", weight, "' (the producer's weight)");
  return *member;
}

}  // namespace

Scores score_magnitude(const nn::Module& model, const Group& group, int p) {
  SHRINK_CHECK(p == 1 || p == 2, "score_magnitude: p must be 1 (L1) or 2 (L2), got ", p);
  const Member& member = magnitude_member(group);
  // One pass over the weight on its device (kernel unit_norm, summed in double); only the
  // per-unit norms come back to the host.
  const Tensor norms = unit_norms(model.parameter(member.tensor), member.axis, p);
  return norms.to_vector<double>();
}

Scores score_random(const Group& group, Generator& gen) {
  SHRINK_CHECK(group.size > 0, "score_random: group '", group.name, "' has no units");
  Scores scores(static_cast<std::size_t>(group.size));
  for (double& s : scores) s = gen.next_double();
  return scores;
}

Scores score_taylor(nn::Module& model, const Group& group, const Calibration& calib) {
  SHRINK_CHECK(grad_enabled(), "score_taylor: needs gradients, but a NoGradGuard is alive");
  const auto names = chain_names(model);
  EvalMode eval(model);
  FrozenParameters frozen(model);
  Tensor h;
  {
    NoGradGuard no_grad;  // nothing upstream of the activation needs a gradient
    h = run_range(model, calib.inputs, names.front(), group.activation);
  }
  h = h.detach();
  h.requires_grad_();
  const std::string next = next_in_chain(model, group.activation);
  const Tensor logits = next.empty() ? h : run_range(model, h, next, names.back());
  cross_entropy(logits, calib.labels).backward();
  SHRINK_CHECK(h.grad().defined(), "score_taylor: no gradient reached layer '", group.activation, "'");
  // Molchanov et al. 2017, eq. 8 summed over the batch: |sum_n,pos a * dL/da|.
  Scores scores = sum_per_channel(h.detach() * h.grad(), channel_axis(h, group.size));
  for (double& s : scores) s = std::abs(s);
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
               model.type_name(), "; criteria support non-empty feed-forward chains (Sequential)");
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

std::vector<Tensor> group_activation(nn::Module& model, const Group& group, const Tensor& inputs,
                                     std::int64_t batch_size) {
  SHRINK_CHECK(batch_size > 0, "criteria: batch_size must be > 0, got ", batch_size);
  SHRINK_CHECK(inputs.defined() && inputs.dim() >= 1 && inputs.size(0) > 0,
               "criteria: calibration inputs are empty");
  const auto names = chain_names(model);
  EvalMode eval(model);
  NoGradGuard no_grad;
  std::vector<Tensor> batches;
  const std::int64_t n = inputs.size(0);
  for (std::int64_t start = 0; start < n; start += batch_size) {
    const Tensor xb = slice(inputs, 0, start, std::min(n, start + batch_size));
    batches.push_back(run_range(model, xb, names.front(), group.activation));
  }
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
