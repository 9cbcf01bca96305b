#include "prune/methods.h"

#include <algorithm>
#include <set>
#include <utility>

#include "core/error.h"
#include "core/strings.h"
#include "prune/allocation.h"
#include "prune/pfp.h"
#include "prune/sap.h"

namespace shrink::prune {

namespace {

const std::vector<TargetKind> kAnyTarget = {TargetKind::Keep, TargetKind::Params, TargetKind::Flops};

// PFP's ε search prices its widths in the target's own measure: a parameter target in
// parameters, a FLOPs target in FLOPs (priced in parameters, mobilenetv2 at --target-flops
// 0.65 kept 0.848 of its FLOPs: the budget went to the wide, cheap head). A keep target
// becomes the parameter fraction of the uniform allocation at that keep.
std::pair<double, PfpBudget> pfp_budget(const WholeModelInput& in) {
  const PruneOptions& o = in.options;
  if (o.target_kind == TargetKind::Params) return {o.target, PfpBudget::Parameters};
  if (o.target_kind == TargetKind::Flops) return {o.target, PfpBudget::Flops};
  const std::vector<Size> sizes =
      sizes_after(in.model, in.groups, {{}, allocate_uniform(in.groups, o.target, o.rails)}, in.sample_shape);
  return {static_cast<double>(sizes[1].params) / static_cast<double>(sizes[0].params), PfpBudget::Parameters};
}

WholeModelFn pfp(bool sampling) {
  return [sampling](const WholeModelInput& in) {
    PfpOptions pfp;
    pfp.sampling = sampling;
    pfp.input_keep = in.options.rails.input_keep;
    pfp.input_reference = in.options.rails.reference;
    const auto [fraction, budget] = pfp_budget(in);
    pfp.budget = budget;
    pfp_prune(in.model, in.groups, in.calib, fraction, pfp, in.gen, in.optimizer, in.options.fold_shift);
  };
}

ScoreFn magnitude(int p) {
  return [p](nn::Module& model, const Group& g, const Calibration&, Generator&) { return score_magnitude(model, g, p); };
}

Method score_method(std::string name, std::string description, ScoreFn fn) {
  Method m{std::move(name), std::move(description), MethodKind::Score, kAnyTarget, {}, {}, {}};
  m.score = std::move(fn);
  return m;
}

std::vector<Method> registry() {
  std::vector<Method> r;
  Method ispasp{"ispasp", "i-SpaSP: sparse signal recovery of each block's hidden units (Wolfe & Kyrillidis 2022)",
                MethodKind::Select, kAnyTarget, {}, {}, {}};
  ispasp.select = [](nn::Module& model, const Group& g, std::int64_t keep, const Calibration& calib,
                     const PruneOptions& o) { return select_ispasp(model, g, keep, calib, o.ispasp_iterations); };
  r.push_back(ispasp);
  Method pfp_top{"pfp", "PFP: sensitivity-based, deterministic top-k with the global budget search (Liebenwein et al. "
                 "2020); the ε search meets a parameter or FLOPs target in its own measure, a keep target as the "
                 "parameter count of the uniform allocation at that keep",
                 MethodKind::WholeModel, kAnyTarget, {}, {}, pfp(false)};
  r.push_back(pfp_top);
  Method pfp_rand{"pfp-sampling", "PFP with sensitivity sampling and reweighting (the paper's Alg. 1)",
                  MethodKind::WholeModel, kAnyTarget, {}, {}, pfp(true)};
  r.push_back(pfp_rand);
  Method sap{"sap", "structured SAP, this project's own variant (not the paper's method, which prunes single "
             "weights: shrink-sparsify): the PQ Index of each layer's unit norms decides its count, the largest "
             "norms stay (after Diao et al. 2023; --sap-p/-q/-eta/-gamma/-beta); decides its own counts, so it "
             "takes no --keep/--target-* (target none)",
             MethodKind::WholeModel, {TargetKind::None}, {}, {}, {}};
  sap.prune = [](const WholeModelInput& in) { sap_structured_prune(in.model, in.groups, in.options.sap, in.optimizer, in.options.fold_shift);
  };
  r.push_back(sap);
  r.push_back(score_method("magnitude", "L1 norm of a unit's weights (FT, Li et al. 2017); same as magnitude-l1",
                           magnitude(1)));
  r.push_back(score_method("magnitude-l1", "L1 norm of a unit's weights (FT)", magnitude(1)));
  r.push_back(score_method("magnitude-l2", "L2 norm of a unit's weights (SoftNet, He et al. 2018)", magnitude(2)));
  r.push_back(score_method("taylor", "first-order Taylor |activation x gradient| (Molchanov et al. 2017)",
                           [](nn::Module& model, const Group& g, const Calibration& calib, Generator&) {
                             return score_taylor(model, g, calib);
                           }));
  r.push_back(score_method("head-importance",
                           "E_x |dLoss/d(unit mask)|, the head importance of Michel et al. 2019 (any group's units)",
                           [](nn::Module& model, const Group& g, const Calibration& calib, Generator&) {
                             return score_head_importance(model, g, calib);
                           }));
  r.push_back(score_method("random", "uniformly random units (baseline)",
                           [](nn::Module&, const Group& g, const Calibration&, Generator& gen) {
                             return score_random(g, gen);
                           }));
  Method gfs{"gfs", "greedy forward selection (Ye et al. 2020): slow, provable baseline", MethodKind::Select,
             kAnyTarget, {}, {}, {}};
  gfs.select = [](nn::Module& model, const Group& g, std::int64_t keep, const Calibration& calib,
                  const PruneOptions&) { return select_gfs(model, g, keep, calib); };
  r.push_back(gfs);
  return r;
}

// A half-wired entry fails here, on first use, before any model is touched.
void validate(const std::vector<Method>& all) {
  std::set<std::string> names;
  for (const Method& m : all) {
    SHRINK_CHECK(names.insert(m.name).second, "prune methods: '", m.name, "' is registered twice");
    SHRINK_CHECK(!m.targets.empty(), "prune methods: '", m.name, "' accepts no target");
    SHRINK_CHECK(static_cast<bool>(m.score) == (m.kind == MethodKind::Score) &&
                     static_cast<bool>(m.select) == (m.kind == MethodKind::Select) &&
                     static_cast<bool>(m.prune) == (m.kind == MethodKind::WholeModel),
                 "prune methods: '", m.name, "' is a ", method_kind_name(m.kind),
                 " method but does not set exactly the function of that kind");
  }
}

}  // namespace

const char* target_name(TargetKind kind) {
  switch (kind) {
    case TargetKind::Keep: return "keep";
    case TargetKind::Params: return "params";
    case TargetKind::Flops: return "flops";
    case TargetKind::None: return "none";
  }
  fail("target_name: unknown target kind ", static_cast<int>(kind));
}

const char* allocation_name(Allocation allocation) {
  switch (allocation) {
    case Allocation::Uniform: return "uniform";
    case Allocation::Global: return "global";
  }
  fail("allocation_name: unknown allocation ", static_cast<int>(allocation));
}

Allocation parse_allocation(const std::string& name) {
  if (name == "uniform") return Allocation::Uniform;
  if (name == "global") return Allocation::Global;
  fail("prune: unknown allocation '", name, "'; valid: uniform, global");
}

const char* method_kind_name(MethodKind kind) {
  switch (kind) {
    case MethodKind::Score: return "score";
    case MethodKind::Select: return "select";
    case MethodKind::WholeModel: return "whole-model";
  }
  fail("method_kind_name: unknown kind ", static_cast<int>(kind));
}

bool Method::accepts(TargetKind target) const {
  return std::find(targets.begin(), targets.end(), target) != targets.end();
}

std::string Method::targets_text() const {
  std::vector<std::string> names;
  for (TargetKind t : targets) names.push_back(target_name(t));
  return join(names, ", ");
}

const std::vector<Method>& methods() {
  static const std::vector<Method> all = [] {
    std::vector<Method> r = registry();
    validate(r);
    return r;
  }();
  return all;
}

const Method& find_method(const std::string& name) {
  for (const Method& m : methods())
    if (m.name == name) return m;
  fail("prune: unknown method '", name, "'; valid: ", method_list());
}

std::string method_list() {
  std::vector<std::string> names;
  for (const Method& m : methods()) names.push_back(m.name);
  return join(names, ", ");
}

void check_applicable(const Method& m, const PruneOptions& o) {
  if (o.target_kind == TargetKind::None)
    SHRINK_CHECK(m.accepts(TargetKind::None), "prune: method '", m.name, "' needs a target; it accepts: ",
                 m.targets_text());
  else
    SHRINK_CHECK(m.accepts(o.target_kind), "prune: method '", m.name, "' does not accept a ",
                 target_name(o.target_kind), " target",
                 m.accepts(TargetKind::None) ? " (it decides its own counts)" : "", "; it accepts: ",
                 m.targets_text());
  SHRINK_CHECK(o.rails.input_keep == 0 || o.prune_inputs,
               "prune: a keep fraction for the input features needs input pruning (--prune-inputs)");
  check_input_keep(o.rails);
  SHRINK_CHECK(o.rails.input_keep == 0 || !m.accepts(TargetKind::None), "prune: method '", m.name,
               "' decides its own counts, the input features' too; it takes no keep fraction for them");
  if (o.target_kind != TargetKind::None)
    SHRINK_CHECK(o.target > 0 && o.target <= 1, "prune: the target must be a fraction in (0, 1], got ", o.target);
  if (o.allocation == Allocation::Global && !m.global_allocation()) {
    std::vector<std::string> scored;
    for (const Method& other : methods())
      if (other.global_allocation()) scored.push_back(other.name);
    fail("prune: method '", m.name, "' does not take global allocation (it needs per-unit scores: ",
         join(scored, ", "), ")");
  }
}

}  // namespace shrink::prune
