// prune_model: one entry point for every structured method. It builds the groups, asks
// allocation for per-group counts, asks the criterion which units to keep (group by group,
// input to output, each on the network as already pruned upstream), and shrinks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.h"
#include "nn/optim.h"
#include "prune/allocation.h"
#include "prune/criteria.h"

namespace shrink::prune {

enum class TargetKind {
  Keep,    // fraction of each group's units kept
  Params,  // fraction of the current model's parameters kept
  Flops,   // fraction of the current model's FLOPs per sample kept
};

struct PruneOptions {
  std::string method = "ispasp";  // see method_names()
  TargetKind target_kind = TargetKind::Keep;
  double target = 0.5;
  std::string allocation = "uniform";  // or "global" (score-based criteria only)
  GuardRails rails;
  int ispasp_iterations = 20;
  std::uint64_t seed = 0;
};

struct GroupChange {
  std::string name;
  std::int64_t before = 0, after = 0;
};

struct PruneReport {
  std::vector<GroupChange> groups;
  double seconds = 0;  // wall time of scoring, selection and shrinking
};

// The structured methods prune_model knows, with a one-line description each.
std::vector<std::pair<std::string, std::string>> method_names();

PruneReport prune_model(nn::Module& model, const Calibration& calib, const PruneOptions& options,
                        const Shape& sample_shape, nn::Optimizer* optimizer = nullptr);

}  // namespace shrink::prune
