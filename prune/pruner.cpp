#include "prune/pruner.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/ops.h"
#include "prune/activation_memo.h"
#include "prune/methods.h"
#include "prune/refit.h"
#include "prune/slice.h"

namespace shrink::prune {

namespace {

// Per-group counts for a score or select method.
KeepCounts allocate(nn::Module& model, const std::vector<Group>& groups, const Method& method,
                    const Calibration& calib, const PruneOptions& o, const Shape& sample_shape, Generator& gen) {
  const bool keep = o.target_kind == TargetKind::Keep, flops = o.target_kind == TargetKind::Flops;
  switch (o.allocation) {
    case Allocation::Uniform:
      return allocate_uniform(
          groups, keep ? o.target : keep_fraction_for_target(model, groups, o.target, flops, sample_shape, o.rails),
          o.rails);
    case Allocation::Global: {
      std::map<std::string, Scores> all;
      for (const Group& g : groups) all[g.name] = method.score(model, g, calib, gen);
      return keep ? allocate_global(groups, all, o.target, o.rails)
                  : allocate_global_for_target(model, groups, all, o.target, flops, sample_shape, o.rails);
    }
  }
  fail("prune: unknown allocation ", static_cast<int>(o.allocation));
}

}  // namespace

std::vector<Group> select_groups(std::vector<Group> groups, const std::vector<std::string>& names,
                                 const std::vector<Group>& every_kind) {
  if (names.empty()) return groups;
  std::string known;
  for (const Group& g : groups) known += (known.empty() ? "" : ", ") + g.name;
  const auto named = [](const std::vector<Group>& list, const std::string& name) {
    return std::find_if(list.begin(), list.end(), [&](const Group& g) { return g.name == name; });
  };
  for (const std::string& name : names) {
    SHRINK_CHECK(!name.empty(), "prune: an empty group name in the list of groups to prune");
    if (named(groups, name) != groups.end()) continue;
    // A residual stream or the input group exists only when asked for: say what asks for it.
    if (const auto other = named(every_kind, name); other != every_kind.end())
      fail("prune: group '", name, "' is ", other->is_input() ? "the model's input features" : "a residual stream",
           ", pruned only with ", other->is_input() ? "prune_inputs (--prune-inputs)" : "prune_residual (--prune-residual)");
    fail("prune: the model has no group '", name, "'; its groups are: ", known);
  }
  std::vector<Group> ordered;  // input to output, as built
  for (const Group& g : groups)
    if (std::find(names.begin(), names.end(), g.name) != names.end()) ordered.push_back(g);
  return ordered;
}

std::vector<Group> groups_if_taken(nn::Module& model, const Shape& sample_shape, const GroupOptions& kind) {
  try {
    return build_groups(model, sample_shape, kind);
  } catch (const Error&) {
    return {};  // build_groups refuses this kind for this model, naming why; here: none
  }
}

PruneReport prune_model(nn::Module& model, const Calibration& calib, const PruneOptions& o,
                        const Shape& sample_shape, nn::Optimizer* optimizer) {
  const Method& method = find_method(o.method);
  check_applicable(method, o);
  // NaN or Inf in the calibration batch would score every unit NaN: a choice by chance.
  if (calib.inputs.defined() && calib.inputs.dtype() != DType::Int64)
    if (const std::int64_t at = first_nonfinite(calib.inputs); at >= 0)
      fail("prune_model: the calibration batch holds ", nonfinite_str(calib.inputs, at));
  SHRINK_CHECK(!o.refit || (std::isfinite(o.refit_ridge) && o.refit_ridge > 0),
               "prune_model: the refit's ridge must be a positive number, got ", o.refit_ridge);
  const auto start = std::chrono::steady_clock::now();
  // The input group and the residual streams, built only to name what a missing name needs;
  // a model that takes neither kind (a transformer; no input selection) has nothing to point to.
  std::vector<Group> every_kind;
  if (!o.only_groups.empty())
    for (const GroupOptions kind : {GroupOptions{true, false}, GroupOptions{false, true}})
      for (Group& g : groups_if_taken(model, sample_shape, kind)) every_kind.push_back(std::move(g));
  std::vector<Group> groups = select_groups(build_groups(model, sample_shape, GroupOptions{o.prune_inputs, o.prune_residual}),
                                            o.only_groups, every_kind);
  // Success with nothing pruned would hide the problem (a sparse checkpoint, say).
  SHRINK_CHECK(!groups.empty(), "prune_model: nothing to prune: no group of units lies between two "
               "layers that declare their channels (sparse CSR layers do not: prune the dense model "
               "structurally, then sparsify it)");
  PruneReport report;
  for (const Group& g : groups) report.groups.push_back({g.name, g.size, g.size});
  Generator gen(o.seed);
  // The refit's targets: every consumer's output on the dense network, before any cut.
  const DenseTargets dense = o.refit ? capture_dense_targets(model, groups, calib) : DenseTargets{};
  auto refit = [&](const Group& g, std::size_t i) {
    const RefitResult r = refit_consumer(model, g, groups, dense, calib, o.refit_ridge, optimizer);
    report.groups[i].refit = true;
    report.groups[i].refit_error_before = r.error_before;
    report.groups[i].refit_error_after = r.error_after;
  };

  if (method.kind == MethodKind::WholeModel) {
    method.prune({model, groups, calib, o, sample_shape, gen, optimizer});
    if (o.refit)
      for (std::size_t i = 0; i < groups.size(); ++i)
        if (groups[i].size < dense.units.at(groups[i].name)) refit(groups[i], i);
  } else {
    // One memo for all the passes: each group's scoring reuses what the last left unchanged.
    Calibration scoring = calib;
    if (o.reuse_activations) scoring.memo = std::make_shared<ActivationMemo>();
    const KeepCounts keep = allocate(model, groups, method, scoring, o, sample_shape, gen);
    for (std::size_t i = 0; i < groups.size(); ++i) {
      Group& g = groups[i];
      const std::int64_t k = apply_rails(keep.at(g.name), g.size, o.rails);
      if (k == g.size) continue;
      // Scored or selected on the network as pruned upstream so far.
      const std::vector<std::int64_t> kept = method.kind == MethodKind::Score
                                                 ? top_k(method.score(model, g, scoring, gen), k)
                                                 : method.select(model, g, k, calib, o);
      shrink_group(model, g, kept, optimizer, o.fold_shift);
      if (o.refit) refit(g, i);
      if (o.after_cut) o.after_cut(model, g);
    }
  }
  for (size_t i = 0; i < groups.size(); ++i) report.groups[i].after = group_size(model, groups[i]);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace shrink::prune
