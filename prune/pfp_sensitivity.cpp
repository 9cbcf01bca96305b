// PFP empirical sensitivities (ALGORITHMS.md §2.1) and the size of S (§2.2).
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/conv.h"
#include "nn/flops.h"
#include "nn/sequential.h"
#include "prune/patches.h"
#include "prune/pfp.h"
#include "prune/tap.h"

namespace shrink::prune {

namespace {

constexpr std::int64_t kColumnBlock = 16;  // input channels per task: reuses each row of U 16×

bool any_negative(const Tensor& a) {
  const float* p = a.data<float>();
  for (std::int64_t k = 0; k < a.numel(); ++k)
    if (p[k] < 0) return true;
  return false;
}

// 1/z where |z| > float eps, else 0: the code's rule that a vanishing z⁺ or z⁻ contributes
// no edge score (§2.1).
Tensor safe_reciprocal(const Tensor& z) {
  Tensor u = z.clone();
  float* p = u.data<float>();
  const float eps = std::numeric_limits<float>::epsilon();
  for (std::int64_t k = 0; k < u.numel(); ++k) p[k] = std::fabs(p[k]) > eps ? 1.0f / p[k] : 0.0f;
  return u;
}

// Per-unit sensitivity from per-column ones: the max over a unit's consecutive columns (a
// conv channel's kernel positions, a flattened channel's map positions).
Scores max_per_unit(const Scores& columns, std::int64_t units) {
  const std::size_t per = columns.size() / static_cast<std::size_t>(units);
  Scores s(static_cast<std::size_t>(units), 0.0);
  for (std::size_t k = 0; k < columns.size(); ++k) s[k / per] = std::max(s[k / per], columns[k]);
  return s;
}

// One consumer's sensitivities of the group's units (§2.1): its weight against its input,
// unfolded into patches for a conv.
Scores consumer_sensitivity(nn::Module& model, const Group& g, const ConsumerRead& read, const Tensor& a,
                            std::int64_t units) {
  const std::string weight_name = read.consumer + ".weight";
  SHRINK_CHECK(model.has_parameter(weight_name), "PFP: consumer '", read.consumer, "' of group '", g.name,
               "' has no weight");
  const Tensor& w = model.parameter(weight_name);
  SHRINK_CHECK(w.size(1) == units * read.block, "PFP: consumer '", read.consumer, "' reads ", w.size(1),
               " input columns but group '", g.name, "' has ", units, " units of ", read.block);
  if (w.dim() == 4) {  // a conv: kernel (out, in * kh * kw) against unfolded patches
    const auto* conv = dynamic_cast<const nn::Conv2d*>(model.child(read.consumer).get());
    SHRINK_CHECK(conv != nullptr, "PFP: consumer '", read.consumer, "' has a 4-D weight but is not a Conv2d");
    return max_per_unit(pfp_sensitivity(reshape(w, {w.size(0), -1}), unfold_patches(a, *conv)), units);
  }
  SHRINK_CHECK(w.dim() == 2, "PFP: consumer '", read.consumer, "' has weight ", shape_str(w.shape()),
               "; PFP scores Linear and Conv2d consumers");
  return max_per_unit(pfp_sensitivity(w, reshape(a, {-1, w.size(1)})), units);
}

}  // namespace

Scores pfp_sensitivity(const Tensor& weight, const Tensor& activations) {
  SHRINK_CHECK(weight.dim() == 2, "pfp_sensitivity: weight must be (out, in), got ",
               shape_str(weight.shape()));
  const std::int64_t out = weight.size(0), in = weight.size(1);
  SHRINK_CHECK(activations.dim() == 2 && activations.size(1) == in, "pfp_sensitivity: activations ",
               shape_str(activations.shape()), " must be (rows, ", in, ") for weight ",
               shape_str(weight.shape()));
  NoGradGuard no_grad;
  const Tensor w = weight.detach().to(Device::cpu()).to(DType::Float32);  // (out, in)
  Tensor a = activations.detach().to(Device::cpu()).to(DType::Float32);   // (rows, in)
  // Negative inputs: relu(a) and relu(-a) are separate samples, so every a_k >= 0 below.
  if (any_negative(a)) a = concat({relu(a), relu(neg(a))}, 0);
  const std::int64_t rows = a.size(0);
  const Tensor w_pos = relu(w), w_neg = neg(relu(neg(w)));
  // z⁺ = a W⁺ᵀ and z⁻ = a W⁻ᵀ as two GEMMs, (rows, in) x (in, out) -> (rows, out).
  const Tensor u_pos = safe_reciprocal(linear(a, w_pos, Tensor()));
  const Tensor u_neg = safe_reciprocal(linear(a, w_neg, Tensor()));
  const Tensor w_t = transpose(w, 0, 1);  // (in, out): channel j's weights are contiguous
  const float* A = a.data<float>();
  const float* UP = u_pos.data<float>();
  const float* UN = u_neg.data<float>();
  const float* WT = w_t.data<float>();
  Scores s(static_cast<std::size_t>(in), 0.0);
  // s_j = max_x a_j(x) · max_i [W_ij · (W_ij > 0 ? 1/z⁺_i : 1/z⁻_i)]: exactly one of W⁺_ij and
  // W⁻_ij is non-zero, and both ratios are >= 0, so this is max(W⁺a/z⁺, W⁻a/z⁻) of §2.1.
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t jb = 0; jb < in; jb += kColumnBlock) {
    const std::int64_t je = std::min(in, jb + kColumnBlock);
    float best[kColumnBlock] = {};
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* up = UP + r * out;
      const float* un = UN + r * out;
      for (std::int64_t j = jb; j < je; ++j) {
        const float aj = A[r * in + j];
        if (aj <= 0) continue;  // g_ij = 0
        const float* wj = WT + j * out;
        float h = 0;
        for (std::int64_t i = 0; i < out; ++i) h = std::max(h, wj[i] * (wj[i] > 0 ? up[i] : un[i]));
        best[j - jb] = std::max(best[j - jb], aj * h);
      }
    }
    for (std::int64_t j = jb; j < je; ++j) s[static_cast<std::size_t>(j)] = best[j - jb];
  }
  return s;
}

std::map<std::string, Scores> pfp_sensitivities(nn::Module& model, const std::vector<Group>& groups,
                                                const Tensor& inputs) {
  std::set<std::string> unique;
  for (const Group& g : groups) {
    SHRINK_CHECK(!g.reads.empty(), "PFP: group '", g.name, "' has no consumer layer to score it");
    for (const ConsumerRead& r : g.reads) unique.insert(r.consumer);
  }
  const std::vector<std::string> consumers(unique.begin(), unique.end());
  // One pass of the current network: every group sees unpruned upstream activations (§2.1).
  const auto taps = capture(model, inputs, consumers);
  std::map<std::string, Scores> out;
  for (const Group& g : groups) {
    const std::int64_t units = group_size(model, g);
    // A group read by several layers (a residual stream) keeps a unit that any of them needs:
    // s_j = max over consumers c of s_j^c, an upper bound of every consumer's sensitivity, so
    // one sample drawn from p_j = s_j / S bounds each consumer's error as §2.2 bounds one
    // layer's (the official code's in-mode pruning keeps a stream channel while any consumer
    // keeps its column, §2.2 "Propagation").
    Scores s(static_cast<std::size_t>(units), 0.0);
    for (const ConsumerRead& r : g.reads) {
      const Scores c = consumer_sensitivity(model, g, r, taps.at(r.consumer).input, units);
      for (std::size_t j = 0; j < s.size(); ++j) s[j] = std::max(s[j], c[j]);
    }
    out[g.name] = std::move(s);
  }
  return out;
}

Scores pfp_probabilities(const Scores& sensitivities) {
  SHRINK_CHECK(!sensitivities.empty(), "pfp_probabilities: no sensitivities");
  double total = 0;
  for (double s : sensitivities) {
    SHRINK_CHECK(s >= 0 && std::isfinite(s), "pfp_probabilities: sensitivity ", s, " is not >= 0");
    total += s;
  }
  Scores p(sensitivities.size(), 1.0 / static_cast<double>(sensitivities.size()));
  if (total > 0)
    for (std::size_t j = 0; j < p.size(); ++j) p[j] = sensitivities[j] / total;  // p_j = s_j / S_l
  return p;
}

std::int64_t pfp_sample_size(const nn::Module& model, const Shape& sample_shape, double delta) {
  SHRINK_CHECK(delta > 0 && delta < 1, "pfp_sample_size: delta must be in (0, 1), got ", delta);
  double eta_max = 0, eta_sum = 0;
  const auto trace = nn::trace_forward(model, sample_shape);
  for (const auto& [name, module] : model.named_modules()) {
    // Only compressible layers count: Linear and ungrouped convs (not BN, not depthwise).
    if (!module->named_children().empty() || !trace.count(name) ||
        module->channels().kind != nn::Module::ChannelSpec::Kind::Transform)
      continue;
    const Shape& shape = trace.at(name).output_shape;
    const double eta = static_cast<double>(numel(shape));
    eta_max = std::max(eta_max, eta);
    eta_sum += eta;
  }
  SHRINK_CHECK(eta_sum > 0, "pfp_sample_size: the model has no weighted layer");
  // |S| = ceil(3 log(8 η* Ση / δ_S)) (torchprune, §2.2)
  return static_cast<std::int64_t>(std::ceil(3.0 * (std::log(8.0 * eta_max * eta_sum) - std::log(delta))));
}

}  // namespace shrink::prune
