// PFP allocation (ALGORITHMS.md §2.2, torchprune's PFPRandAllocator): one global ε gives
// every layer a sample complexity m_l(ε) and a width n_l(ε); ε is searched so that the
// shrunk network's cost (parameters or FLOPs, a closed form fitted to prune/allocation.h's
// size_after) meets the budget, inside the code's outer loop on the nominal keep ratio.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/flops.h"
#include "nn/sequential.h"
#include "prune/allocation.h"
#include "prune/pfp.h"

namespace shrink::prune {

namespace {

constexpr double kC = 3.0;              // the constant c of alpha_l (torchprune c_constant)
constexpr double kLogEpsLo = -690.0;    // ε in [1e-300, 1e150], the code's Brent bracket
constexpr double kLogEpsHi = 345.0;
constexpr int kOuterIterations = 20;    // the code's outer Brent runs up to 20 iterations

// PFP's ε search prices thousands of candidate widths, too many to shrink a shape-only copy
// for each (size_after). So the search uses a closed form, fitted to size_after, the one
// cost model (prune/allocation.h). A chain's parameters and FLOPs are a polynomial in the
// group widths whose every term holds at most two groups, each to the first power (a
// weight (out, in) indexed by two groups, a bias by one, a per-unit op by one):
//   cost(w) = C + Σ_g A_g u_g + Σ_{g<h} B_gh u_g u_h,   u_g = w_g - 1,
// which 1 + G + G(G-1)/2 evaluations of size_after at widths in {1, 2} determine exactly.
// The fit is checked against size_after at the current widths; a model whose cost has
// another form (a group indexing both axes of one weight) is refused, not mispriced.
struct CostModel {
  struct Pair {
    std::size_t g, h;
    double coef;
  };
  double constant = 0;
  std::vector<double> linear;
  std::vector<Pair> pairs;  // nonzero B_gh only

  double operator()(const std::vector<std::int64_t>& widths) const {
    double total = constant;
    for (std::size_t g = 0; g < linear.size(); ++g) total += linear[g] * static_cast<double>(widths[g] - 1);
    for (const Pair& p : pairs)
      total += p.coef * static_cast<double>(widths[p.g] - 1) * static_cast<double>(widths[p.h] - 1);
    return total;
  }
};

KeepCounts keep_counts(const std::vector<Group>& groups, const std::vector<std::int64_t>& widths) {
  KeepCounts keep;
  for (std::size_t g = 0; g < groups.size(); ++g) keep[groups[g].name] = widths[g];
  return keep;
}

// The model's own cost as it is now: no copy needed.
double current_cost(const nn::Module& model, const Shape& sample_shape, PfpBudget budget) {
  return static_cast<double>(budget == PfpBudget::Parameters ? model.num_parameters()
                                                             : nn::flops_per_sample(model, sample_shape));
}

CostModel cost_model(const nn::Module& model, const std::vector<Group>& groups, const Shape& sample_shape,
                     PfpBudget budget) {
  const std::size_t n = groups.size();
  // Probes: all widths 1, then each group at 2, then each pair at 2. A group of one unit (a
  // grey image's input channel, a layer already cut to 1) cannot be probed at 2 and never
  // grows past 1 (width_at clamps to in_l), so it is probed at 1: its terms fit as 0.
  std::vector<std::int64_t> two(n);
  for (std::size_t g = 0; g < n; ++g) two[g] = std::min<std::int64_t>(2, group_size(model, groups[g]));
  std::vector<KeepCounts> probes;
  std::vector<std::int64_t> w(n, 1);
  probes.push_back(keep_counts(groups, w));
  for (std::size_t g = 0; g < n; ++g) {
    w[g] = two[g];
    probes.push_back(keep_counts(groups, w));
    w[g] = 1;
  }
  for (std::size_t g = 0; g < n; ++g)
    for (std::size_t h = g + 1; h < n; ++h) {
      w[g] = two[g], w[h] = two[h];
      probes.push_back(keep_counts(groups, w));
      w[g] = w[h] = 1;
    }
  std::vector<double> cost;
  for (const Size& s : sizes_after(model, groups, probes, sample_shape))
    cost.push_back(static_cast<double>(budget == PfpBudget::Parameters ? s.params : s.flops));
  CostModel cm;
  cm.constant = cost[0];
  for (std::size_t g = 0; g < n; ++g) cm.linear.push_back(cost[1 + g] - cm.constant);
  std::size_t next = 1 + n;
  for (std::size_t g = 0; g < n; ++g)
    for (std::size_t h = g + 1; h < n; ++h) {
      const double coef = cost[next++] - cm.constant - cm.linear[g] - cm.linear[h];
      if (coef != 0) cm.pairs.push_back({g, h, coef});
    }
  std::vector<std::int64_t> current;
  for (const Group& g : groups) current.push_back(group_size(model, g));
  const double fitted = cm(current), measured = current_cost(model, sample_shape, budget);
  SHRINK_CHECK(fitted == measured, "PFP: the model's ", budget == PfpBudget::Parameters ? "parameter" : "FLOP",
               " count is not a sum of terms in at most two group widths (fitted ", fitted, ", measured ",
               measured, "); PFP's budget search does not support this model");
  return cm;
}


// One group's inputs to the allocation: p, S_l = Σ s_j, alpha_l and in_l.
struct Layer {
  Scores log1m_p;       // log(1 - p_j), for 1 - (1-p_j)^m = -expm1(m log(1-p_j))
  std::int64_t positive = 0;
  double total = 0;     // S_l
  double alpha = 0;
  std::int64_t in = 0;
  std::int64_t fixed = 0;  // > 0: the width, whatever ε (an input group under --keep-inputs)
};

double expected_unique(const Layer& l, double m) {
  if (m <= 0) return 0;
  if (!std::isfinite(m) || m > 1e300) return static_cast<double>(l.positive);
  double e = 0;
  for (double lp : l.log1m_p) e -= std::expm1(m * lp);
  return e;
}

// n_l(ε) = clamp(ceil(Σ_j 1 - (1-p_j)^{m_l}), 1, in_l), m_l = ceil(3(6+2ε) alpha_l S_l / ε²).
std::int64_t width_at(const Layer& l, double eps) {
  if (l.fixed > 0) return l.fixed;
  const double m = l.total > 0 ? std::ceil(3.0 * (6.0 + 2.0 * eps) * l.alpha * l.total / (eps * eps)) : 0.0;
  const double n = std::ceil(expected_unique(l, m) - 1e-9);
  return std::clamp(static_cast<std::int64_t>(std::min(n, 9e18)), std::int64_t{1}, l.in);
}

std::vector<std::int64_t> widths_at(const std::vector<Layer>& layers, double log_eps) {
  std::vector<std::int64_t> w;
  for (const Layer& l : layers) w.push_back(width_at(l, std::exp(log_eps)));
  return w;
}

struct Allocation {
  std::vector<std::int64_t> widths;
  double epsilon = 0;
  double cost = 0;
};

// The largest log ε at which layer l is wider than w (-inf if no ε makes it so): where the
// ε search would add the layer's next channel.
double next_channel_log_eps(const Layer& l, std::int64_t w) {
  double lo = kLogEpsLo, hi = kLogEpsHi;
  if (w >= l.in || l.fixed > 0 || width_at(l, std::exp(lo)) <= w) return -std::numeric_limits<double>::infinity();
  if (width_at(l, std::exp(hi)) > w) return hi;
  while (hi - lo > 1e-12 * std::max(1.0, std::fabs(hi))) {
    const double mid = 0.5 * (lo + hi);
    (width_at(l, std::exp(mid)) > w ? lo : hi) = mid;
  }
  return lo;
}

// Bisection on log ε for the largest widths(ε) whose cost fits the budget (cost falls as ε
// grows). The widths step, and one step of one layer can cost more than the budget has
// left, so the search ends with a fill: the channels a smaller ε would add next, in that
// order, each as long as it still fits (a layer whose next channel does not fit is skipped).
Allocation search(const std::vector<Layer>& layers, const CostModel& cost, double budget) {
  double lo = kLogEpsLo, hi = kLogEpsHi;  // cost(lo) > budget >= cost(hi) once bracketed
  if (cost(widths_at(layers, lo)) <= budget) hi = lo;
  else if (cost(widths_at(layers, hi)) > budget) lo = hi;
  else
    while (hi - lo > 1e-12 * std::max(1.0, std::fabs(hi))) {
      const double mid = 0.5 * (lo + hi);
      (cost(widths_at(layers, mid)) > budget ? lo : hi) = mid;
    }
  Allocation a{widths_at(layers, hi), std::exp(hi), 0};
  a.cost = cost(a.widths);
  std::vector<double> next(layers.size());
  for (std::size_t g = 0; g < layers.size(); ++g) next[g] = next_channel_log_eps(layers[g], a.widths[g]);
  for (;;) {
    std::size_t pick = layers.size();
    double pick_cost = 0;
    for (std::size_t g = 0; g < layers.size(); ++g) {
      if (a.widths[g] >= layers[g].in || layers[g].fixed > 0) continue;
      ++a.widths[g];
      const double c = cost(a.widths);
      --a.widths[g];
      if (c > budget || (pick < layers.size() && next[g] <= next[pick])) continue;
      pick = g, pick_cost = c;
    }
    if (pick == layers.size()) break;
    a.cost = pick_cost;
    next[pick] = next_channel_log_eps(layers[pick], ++a.widths[pick]);
  }
  return a;
}

}  // namespace

double pfp_expected_unique(const Scores& probabilities, double draws) {
  Layer l;
  for (double p : probabilities) {
    l.log1m_p.push_back(std::log1p(-p));
    if (p > 0) ++l.positive;
  }
  return expected_unique(l, draws);
}

double pfp_cost(const nn::Module& model, const std::vector<Group>& groups, const Shape& sample_shape,
                const std::map<std::string, std::int64_t>& widths, PfpBudget budget) {
  if (widths.empty()) return current_cost(model, sample_shape, budget);
  const Size s = size_after(model, groups, widths, sample_shape);
  return static_cast<double>(budget == PfpBudget::Parameters ? s.params : s.flops);
}

PfpResult pfp_allocate(nn::Module& model, const std::vector<Group>& groups, const Calibration& calib,
                       double target_ratio, const PfpOptions& options) {
  SHRINK_CHECK(!groups.empty(), "pfp_allocate: no groups to prune");
  SHRINK_CHECK(target_ratio > 0 && target_ratio <= 1, "pfp_allocate: target ratio must be in (0, 1], got ",
               target_ratio);
  SHRINK_CHECK(options.delta > 0 && options.delta < 1, "pfp_allocate: delta must be in (0, 1), got ",
               options.delta);
  SHRINK_CHECK(calib.inputs.defined() && calib.inputs.dim() >= 2 && calib.inputs.size(0) > 0,
               "pfp_allocate: calibration inputs must be a non-empty batch (N, ...)");
  const Shape sample_shape(calib.inputs.shape().begin() + 1, calib.inputs.shape().end());
  const std::int64_t available = calib.inputs.size(0);
  const std::int64_t wanted =
      options.num_samples < 0 ? pfp_sample_size(model, sample_shape, options.delta) : options.num_samples;
  PfpResult result;
  result.samples = std::clamp(wanted, std::int64_t{1}, available);
  result.sensitivities = pfp_sensitivities(model, groups, slice(calib.inputs, 0, 0, result.samples));

  // Consumer output positions P_l and kernel size κ_l for alpha_l.
  std::map<std::string, double> positions;
  for (const auto& [name, trace] : nn::trace_forward(model, sample_shape)) {
    const std::string weight = name + ".weight";
    if (!name.empty() && model.has_parameter(weight))
      positions[name] = static_cast<double>(numel(trace.output_shape)) /
                        static_cast<double>(model.parameter(weight).size(0));
  }
  std::vector<Layer> layers;
  for (const Group& g : groups) {
    const Scores& s = result.sensitivities.at(g.name);
    const Scores p = pfp_probabilities(s);
    result.probabilities[g.name] = p;
    Layer l;
    for (double pj : p) {
      l.log1m_p.push_back(std::log1p(-pj));
      if (pj > 0) ++l.positive;
    }
    for (double sj : s) l.total += sj;
    // alpha_l = 2c log(8 (P_l + 1) κ_l / δ); a group read by several layers takes the largest,
    // which bounds every consumer's sample count.
    for (const ConsumerRead& r : g.reads) {
      const Tensor& w = model.parameter(r.consumer + ".weight");
      const double kappa = static_cast<double>(w.numel()) / static_cast<double>(w.size(0) * w.size(1));
      l.alpha = std::max(l.alpha, 2.0 * kC * (std::log(8.0 * (positions.at(r.consumer) + 1.0) * kappa) -
                                              std::log(options.delta)));
    }
    l.in = group_size(model, g);
    if (g.is_input() && options.input_keep > 0)
      l.fixed = std::clamp<std::int64_t>(
          std::llround(options.input_keep *
                       static_cast<double>(reference_size(g, options.input_reference))),
          1, l.in);
    layers.push_back(std::move(l));
  }

  const CostModel cost = cost_model(model, groups, sample_shape, options.budget);
  std::vector<std::int64_t> current;
  for (const Group& g : groups) current.push_back(group_size(model, g));
  const double reference = options.reference > 0 ? options.reference : cost(current);
  // Outer loop on the nominal keep ratio (torchprune): re-aim until the achieved ratio is
  // within tolerance·target. With an exact cost model one pass usually suffices.
  double nominal = target_ratio;
  Allocation best;
  double best_error = std::numeric_limits<double>::infinity();
  for (int it = 0; it < kOuterIterations; ++it) {
    const Allocation a = search(layers, cost, nominal * reference);
    const double error = std::fabs(a.cost / reference - target_ratio);
    if (error < best_error) best = a, best_error = error;
    if (error <= options.tolerance * target_ratio) break;
    const double next = nominal * target_ratio / (a.cost / reference);
    if (std::fabs(next - nominal) <= 1e-12 * nominal) break;
    nominal = next;
  }
  for (std::size_t g = 0; g < groups.size(); ++g) result.keep[groups[g].name] = best.widths[g];
  result.epsilon = best.epsilon;
  result.achieved_ratio = best.cost / reference;
  return result;
}

}  // namespace shrink::prune
