// prune_model: one entry point for every structured method. It builds the groups, looks
// the method up in the registry (prune/methods.h), and either hands the whole model to it
// (PFP, SAP) or asks allocation for per-group counts and the method which units to keep
// (group by group, input to output, each on the network as already pruned upstream), and
// shrinks. With options.refit, each cut group's consumer is refit toward the dense model's
// output (prune/refit.h): right after its cut for score and select methods (so that later
// groups are chosen on the refit network), input to output after the method for whole-model
// ones. The dense targets are the model as prune_model receives it (in a multi-round
// schedule, the model at the start of the round). Without refit, nothing of it runs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.h"
#include "nn/optim.h"
#include "prune/allocation.h"
#include "prune/criteria.h"
#include "prune/options.h"

namespace shrink::prune {

struct GroupChange {
  std::string name;
  std::int64_t before = 0, after = 0;
  // With PruneOptions::refit, for a group that was cut: its consumer's calibration error
  // against the dense output (mean squared) before and after the refit (prune/refit.h).
  bool refit = false;
  double refit_error_before = 0, refit_error_after = 0;
};

struct PruneReport {
  std::vector<GroupChange> groups;
  double seconds = 0;  // wall time of scoring, selection and shrinking
};

// The groups named in `names`, in the order of `groups` (all of them when `names` is empty).
// Throws shrink::Error for an empty name, or a name with no group: one of `every_kind` (the
// groups built with inputs and residual streams) is named with the option it needs, another
// gets the list of the names there are.
std::vector<Group> select_groups(std::vector<Group> groups, const std::vector<std::string>& names,
                                 const std::vector<Group>& every_kind = {});
// The groups `kind` asks for where the model takes them, else none: a transformer takes no
// input or residual-stream groups, a model without an input selection no input group. For
// messages that point to the option a group needs.
std::vector<Group> groups_if_taken(nn::Module& model, const Shape& sample_shape, const GroupOptions& kind);

// Throws shrink::Error for an unknown method, a target or allocation the method does not
// accept (prune/methods.h check_applicable), or a target outside (0, 1].
PruneReport prune_model(nn::Module& model, const Calibration& calib, const PruneOptions& options,
                        const Shape& sample_shape, nn::Optimizer* optimizer = nullptr);

}  // namespace shrink::prune
