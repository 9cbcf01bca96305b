// PFP pruning step (ALGORITHMS.md §2.2, "Pruning step per layer"): PFPNet keeps the n_l
// channels of largest sensitivity; PFPNetRand (Alg. 1) samples them and reweights the
// consumer's columns. Also the hyperharmonic schedule of §2.3.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "prune/pfp.h"
#include "prune/slice.h"

namespace shrink::prune {

namespace {

constexpr std::int64_t kMaxDraws = std::int64_t{1} << 26;  // bounds the sampler's work

// The k channels of largest s (ties to the lower index), sorted ascending.
std::vector<std::int64_t> top_sensitivity(const Scores& s, std::int64_t k) {
  std::vector<std::int64_t> idx(s.size());
  std::iota(idx.begin(), idx.end(), 0);
  const auto before = [&](std::int64_t a, std::int64_t b) {
    return s[a] > s[b] || (s[a] == s[b] && a < b);
  };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), before);
  idx.resize(static_cast<std::size_t>(k));
  std::sort(idx.begin(), idx.end());
  return idx;
}

// Vose's alias table: one uniform draw picks a channel with probability p_j in O(1).
struct AliasTable {
  std::vector<double> accept;
  std::vector<std::int64_t> alias;
  explicit AliasTable(const Scores& p) : accept(p.size()), alias(p.size()) {
    const auto n = static_cast<std::int64_t>(p.size());
    std::vector<std::int64_t> small, large;
    for (std::int64_t j = 0; j < n; ++j) {
      accept[j] = p[j] * static_cast<double>(n);
      alias[j] = j;
      (accept[j] < 1.0 ? small : large).push_back(j);
    }
    while (!small.empty() && !large.empty()) {
      const std::int64_t s = small.back(), l = large.back();
      small.pop_back();
      alias[s] = l;
      accept[l] -= 1.0 - accept[s];
      if (accept[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (std::int64_t j : large) accept[j] = 1.0;
    for (std::int64_t j : small) accept[j] = 1.0;  // rounding leftovers
  }
  std::int64_t draw(Generator& gen) const {
    const double u = gen.next_double() * static_cast<double>(accept.size());
    const auto j = std::min(static_cast<std::int64_t>(u), static_cast<std::int64_t>(accept.size()) - 1);
    return u - static_cast<double>(j) < accept[j] ? j : alias[j];
  }
};

// Multiplies every consumer's input-channel slices by `scale` (one factor per kept channel):
// each layer reading the group sums the same sampled channels (Alg. 1's estimator of its own
// input), so each is reweighted alike. In place, so optimizers keep pointing at the same tensors.
void scale_consumers(nn::Module& model, const Group& group, const std::vector<double>& scale) {
  NoGradGuard no_grad;
  for (const ConsumerRead& read : group.reads) {
    const auto spec = model.child(read.consumer)->channels();
    // A flattened read holds each unit as `block` consecutive columns, all scaled alike.
    std::vector<double> columns;
    for (double f : scale) columns.insert(columns.end(), static_cast<std::size_t>(read.block), f);
    for (const auto& [tensor, axis] : spec.input_axes) {
      Tensor& t = model.parameter(read.consumer + "." + tensor);
      Shape shape(static_cast<std::size_t>(t.dim()), 1);
      shape[static_cast<std::size_t>(axis)] = static_cast<std::int64_t>(columns.size());
      const Tensor factors = Tensor::from_vector(columns, shape, t.device()).to(t.dtype());
      t.copy_(mul(t, factors));
    }
  }
}

// PFPNetRand's draw count M gives n_l distinct channels in expectation only: the drawn
// widths fall around the allocation's, and their cost with them (LeNet-5 at a FLOPs target of
// 0.3 kept 0.40 in one draw, 0.2 kept 0.22). One draw of every group is one candidate; up to
// kSampleTries candidates are drawn, each a whole Alg. 1 sample at the same M, and the first
// whose cost lies within [1 - kSampleBand, 1 + tolerance] of the budget is kept, else the
// nearest at or below it (else the cheapest). Choosing among draws by their size is this
// project's addition: each kept column is still weighted count_j / (M p_j).
constexpr int kSampleTries = 32;
constexpr double kSampleBand = 0.03;

std::vector<PfpSample> draw_near_target(const nn::Module& model, const std::vector<Group>& groups,
                                        const PfpResult& allocation, const Shape& sample_shape, double budget,
                                        const PfpOptions& options, Generator& gen) {
  std::vector<PfpSample> best;
  double best_cost = 0;
  bool best_fits = false;
  for (int attempt = 0; attempt < kSampleTries; ++attempt) {
    std::vector<PfpSample> draw;
    std::map<std::string, std::int64_t> widths;
    for (const Group& g : groups) {
      draw.push_back(pfp_sample(allocation.probabilities.at(g.name), allocation.keep.at(g.name), gen));
      widths[g.name] = static_cast<std::int64_t>(draw.back().kept.size());
    }
    const double cost = pfp_cost(model, groups, sample_shape, widths, options.budget);
    const bool fits = cost <= budget * (1 + options.tolerance);
    const bool better = best.empty() || (fits && (!best_fits || cost > best_cost)) ||
                        (!fits && !best_fits && cost < best_cost);
    if (better) best = std::move(draw), best_cost = cost, best_fits = fits;
    if (fits && cost >= budget * (1 - kSampleBand)) break;
  }
  return best;
}

}  // namespace

PfpSample pfp_sample(const Scores& probabilities, std::int64_t keep, Generator& gen) {
  const auto n = static_cast<std::int64_t>(probabilities.size());
  SHRINK_CHECK(keep >= 1 && keep <= n, "pfp_sample: keep must be in [1, ", n, "], got ", keep);
  double positive = 0;
  for (double p : probabilities) positive += p > 0 ? 1 : 0;
  // Smallest M whose expected distinct count reaches `keep` (or half a channel short of
  // every positive-probability channel, which only M -> infinity reaches).
  const double target = std::min(static_cast<double>(keep), positive - 0.5);
  std::int64_t lo = 0, hi = 1;
  while (hi < kMaxDraws && pfp_expected_unique(probabilities, static_cast<double>(hi)) < target) lo = hi, hi *= 2;
  while (hi - lo > 1) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    (pfp_expected_unique(probabilities, static_cast<double>(mid)) < target ? lo : hi) = mid;
  }
  PfpSample out;
  out.draws = hi;
  const AliasTable table(probabilities);
  std::vector<std::int64_t> count(static_cast<std::size_t>(n), 0);
  for (std::int64_t d = 0; d < out.draws; ++d) ++count[table.draw(gen)];
  for (std::int64_t j = 0; j < n; ++j) {
    if (count[j] == 0) continue;
    out.kept.push_back(j);
    // Alg. 1: each draw of j adds W_:j / (M p_j), so column j carries count_j / (M p_j).
    out.scale.push_back(static_cast<double>(count[j]) / (static_cast<double>(out.draws) * probabilities[j]));
  }
  return out;
}

PfpResult pfp_prune(nn::Module& model, std::vector<Group>& groups, const Calibration& calib,
                    double target_ratio, const PfpOptions& options, Generator& gen, nn::Optimizer* optimizer,
                    bool fold_shift) {
  PfpResult result = pfp_allocate(model, groups, calib, target_ratio, options);
  const Shape sample_shape(calib.inputs.shape().begin() + 1, calib.inputs.shape().end());
  const double reference =
      options.reference > 0 ? options.reference : pfp_cost(model, groups, sample_shape, {}, options.budget);
  const std::vector<PfpSample> samples =
      options.sampling ? draw_near_target(model, groups, result, sample_shape, target_ratio * reference, options, gen)
                       : std::vector<PfpSample>{};
  // Every group was scored and allocated on the unpruned network; now rewrite each.
  for (std::size_t i = 0; i < groups.size(); ++i) {
    Group& g = groups[i];
    if (!options.sampling) {
      shrink_group(model, g, top_sensitivity(result.sensitivities.at(g.name), result.keep.at(g.name)), optimizer,
                   fold_shift);
    } else {
      // No shift fold: the reweighted kept columns already estimate the removed units'
      // whole contribution (Alg. 1's unbiasedness), constant part included.
      shrink_group(model, g, samples[i].kept, optimizer, false);
      scale_consumers(model, g, samples[i].scale);
    }
    result.keep[g.name] = g.size;
  }
  result.achieved_ratio = pfp_cost(model, groups, sample_shape, {}, options.budget) / reference;
  return result;
}

std::vector<double> pfp_hyperharmonic_schedule(int rounds, double alpha) {
  SHRINK_CHECK(rounds >= 0, "pfp_hyperharmonic_schedule: rounds must be >= 0, got ", rounds);
  SHRINK_CHECK(alpha > 0, "pfp_hyperharmonic_schedule: alpha must be > 0, got ", alpha);
  std::vector<double> ratios;
  for (int i = 1; i <= rounds; ++i) ratios.push_back(1.0 - 1.0 / std::pow(i + 1.0, alpha));  // §2.3
  return ratios;
}

}  // namespace shrink::prune
