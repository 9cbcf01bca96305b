// The pruning method registry: one entry per structured method, the only place a method
// name is looked up. prune_model (prune/pruner.h) dispatches through it, shrink-prune's
// --help lists it, and tests walk it, so a method is either fully wired or caught.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "prune/criteria.h"
#include "prune/group.h"
#include "prune/options.h"

namespace shrink::prune {

enum class MethodKind {
  Score,       // per-unit scores; allocation decides counts, the top-k by score is kept
  Select,      // allocation decides counts; the method chooses the kept indices itself
  WholeModel,  // decides counts and kept units over all groups at once (PFP, SAP)
};
const char* method_kind_name(MethodKind kind);  // "score", "select", "whole-model"

// Everything a whole-model method sees.
struct WholeModelInput {
  nn::Module& model;
  std::vector<Group>& groups;
  const Calibration& calib;
  const PruneOptions& options;
  const Shape& sample_shape;
  Generator& gen;
  nn::Optimizer* optimizer;
};

using ScoreFn = std::function<Scores(nn::Module& model, const Group& group, const Calibration& calib,
                                     Generator& gen)>;
using SelectFn = std::function<std::vector<std::int64_t>(nn::Module& model, const Group& group,
                                                         std::int64_t keep, const Calibration& calib,
                                                         const PruneOptions& options)>;
using WholeModelFn = std::function<void(const WholeModelInput& input)>;

struct Method {
  std::string name;
  std::string description;
  MethodKind kind = MethodKind::Score;
  std::vector<TargetKind> targets;  // the targets it accepts; None: it decides its own counts
  ScoreFn score;                    // set exactly when kind == Score
  SelectFn select;                  // set exactly when kind == Select
  WholeModelFn prune;               // set exactly when kind == WholeModel

  // Allocation::Global ranks units across groups, so it needs per-unit scores.
  bool global_allocation() const { return kind == MethodKind::Score; }
  bool accepts(TargetKind target) const;
  std::string targets_text() const;  // e.g. "keep, params, flops"
};

// Every registered method, in --help order. Checked once on first use: an entry whose
// function does not match its kind, a duplicate name, or no accepted target throws.
const std::vector<Method>& methods();
// The entry named `name`; throws shrink::Error listing the valid names.
const Method& find_method(const std::string& name);
// "ispasp, pfp, ..."
std::string method_list();

// Throws shrink::Error naming the method and what it does not accept (target kind,
// allocation), or a target fraction outside (0, 1].
void check_applicable(const Method& method, const PruneOptions& options);

}  // namespace shrink::prune
