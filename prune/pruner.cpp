#include "prune/pruner.h"

#include <chrono>

#include "core/error.h"
#include "prune/pfp.h"
#include "prune/sap.h"
#include "prune/slice.h"

namespace shrink::prune {

std::vector<std::pair<std::string, std::string>> method_names() {
  return {
      {"ispasp", "i-SpaSP: sparse signal recovery of each block's hidden units (Wolfe & Kyrillidis 2022)"},
      {"pfp", "PFP: sensitivity-based, deterministic top-k with the global budget search (Liebenwein et al. 2020)"},
      {"pfp-sampling", "PFP with sensitivity sampling and reweighting (the paper's Alg. 1)"},
      {"sap", "SAP: the PQ Index of each layer's unit norms decides its count, magnitude ranks (ours, after Diao et al. 2023)"},
      {"magnitude", "L1 norm of a unit's weights (FT, Li et al. 2017); same as magnitude-l1"},
      {"magnitude-l1", "L1 norm of a unit's weights (FT)"},
      {"magnitude-l2", "L2 norm of a unit's weights (SoftNet, He et al. 2018)"},
      {"taylor", "first-order Taylor |activation x gradient| (Molchanov et al. 2017)"},
      {"random", "uniformly random units (baseline)"},
      {"gfs", "greedy forward selection (Ye et al. 2020): slow, provable baseline"},
  };
}

namespace {

bool known(const std::string& method) {
  for (const auto& [name, _] : method_names())
    if (name == method) return true;
  return false;
}

std::string known_list() {
  std::string s;
  for (const auto& [name, _] : method_names()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

bool score_based(const std::string& m) {
  return m == "magnitude" || m == "magnitude-l1" || m == "magnitude-l2" || m == "taylor" || m == "random";
}

Scores score(nn::Module& model, const Group& g, const std::string& m, const Calibration& calib,
             Generator& gen) {
  if (m == "magnitude-l2") return score_magnitude(model, g, 2);
  if (m == "magnitude" || m == "magnitude-l1") return score_magnitude(model, g, 1);
  if (m == "taylor") return score_taylor(model, g, calib);
  return score_random(g, gen);
}

// Target as a fraction of the current parameters (PFP's budget is in parameters).
double param_fraction(const nn::Module& model, const std::vector<Group>& groups, const PruneOptions& o,
                      const Shape& sample) {
  if (o.target_kind == TargetKind::Params) return o.target;
  const double keep = o.target_kind == TargetKind::Keep
                          ? o.target
                          : keep_fraction_for_target(model, groups, o.target, true, sample, o.rails);
  const Size dense = size_after(model, groups, {}, sample);
  const Size pruned = size_after(model, groups, allocate_uniform(groups, keep, o.rails), sample);
  return static_cast<double>(pruned.params) / static_cast<double>(dense.params);
}

}  // namespace

PruneReport prune_model(nn::Module& model, const Calibration& calib, const PruneOptions& o,
                        const Shape& sample_shape, nn::Optimizer* optimizer) {
  SHRINK_CHECK(known(o.method), "prune: unknown method '", o.method, "'; valid: ", known_list());
  SHRINK_CHECK(o.target > 0 && o.target <= 1, "prune: the target must be a fraction in (0, 1], got ", o.target);
  SHRINK_CHECK(o.allocation == "uniform" || o.allocation == "global", "prune: unknown allocation '",
               o.allocation, "'; valid: uniform, global");
  SHRINK_CHECK(o.allocation == "uniform" || score_based(o.method), "prune: global allocation needs a "
               "score-based method (magnitude, taylor, random), not ", o.method);
  const auto start = std::chrono::steady_clock::now();
  std::vector<Group> groups = build_groups(model);
  PruneReport report;
  for (const Group& g : groups) report.groups.push_back({g.name, g.size, g.size});
  Generator gen(o.seed);

  if (o.method == "pfp" || o.method == "pfp-sampling") {
    PfpOptions pfp;
    pfp.sampling = o.method == "pfp-sampling";
    pfp_prune(model, groups, calib, param_fraction(model, groups, o, sample_shape), pfp, gen, optimizer);
  } else if (o.method == "sap") {  // SAP decides its own counts from the PQ Index
    sap_structured_prune(model, groups, SapOptions{}, optimizer);
  } else {
    KeepCounts keep;
    const double fraction = o.target_kind == TargetKind::Keep
                                ? o.target
                                : keep_fraction_for_target(model, groups, o.target,
                                                           o.target_kind == TargetKind::Flops,
                                                           sample_shape, o.rails);
    if (o.allocation == "global") {
      std::map<std::string, Scores> all;
      for (const Group& g : groups) all[g.name] = score(model, g, o.method, calib, gen);
      keep = allocate_global(groups, all, fraction, o.rails);
    } else {
      keep = allocate_uniform(groups, fraction, o.rails);
    }
    for (Group& g : groups) {
      const std::int64_t k = apply_rails(keep.at(g.name), g.size, o.rails);
      if (k == g.size) continue;
      std::vector<std::int64_t> kept;
      if (o.method == "ispasp") kept = select_ispasp(model, g, k, calib, o.ispasp_iterations);
      else if (o.method == "gfs") kept = select_gfs(model, g, k, calib);
      else kept = top_k(score(model, g, o.method, calib, gen), k);
      shrink_group(model, g, kept, optimizer);
    }
  }
  for (size_t i = 0; i < groups.size(); ++i) report.groups[i].after = group_size(model, groups[i]);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace shrink::prune
