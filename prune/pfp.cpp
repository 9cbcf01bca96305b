// PFP pruning step (ALGORITHMS.md §2.2, "Pruning step per layer"): PFPNet keeps the n_l
// channels of largest sensitivity; PFPNetRand (Alg. 1) samples them and reweights the
// consumer's columns. Also the hyperharmonic schedule of §2.3.
#include <algorithm>
#include <cmath>
#include <numeric>

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
  // Every group was scored and allocated on the unpruned network; now rewrite each.
  for (Group& g : groups) {
    const std::int64_t n = result.keep.at(g.name);
    if (!options.sampling) {
      shrink_group(model, g, top_sensitivity(result.sensitivities.at(g.name), n), optimizer, fold_shift);
    } else {
      const PfpSample sample = pfp_sample(result.probabilities.at(g.name), n, gen);
      // No shift fold: the reweighted kept columns already estimate the removed units'
      // whole contribution (Alg. 1's unbiasedness), constant part included.
      shrink_group(model, g, sample.kept, optimizer, false);
      scale_consumers(model, g, sample.scale);
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
