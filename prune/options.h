// What a caller asks prune_model for: the method (a registry name, prune/methods.h), the
// target, how counts are allocated across groups, and the guard rails.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nn/module.h"
#include "prune/allocation.h"
#include "prune/group.h"
#include "prune/pqi.h"

namespace shrink::prune {

enum class TargetKind {
  Keep,    // fraction of each group's units kept
  Params,  // fraction of the current model's parameters kept
  Flops,   // fraction of the current model's FLOPs per sample kept
  None,    // no target: the method decides its own counts (SAP); `target` is not read
};
// "keep", "params", "flops", "none".
const char* target_name(TargetKind kind);

// How a score-based method's counts are spread over the groups.
enum class Allocation {
  Uniform,  // the same keep fraction in every group (allocate_uniform)
  Global,   // one ranking of normalised scores across groups (allocate_global)
};
const char* allocation_name(Allocation allocation);  // "uniform", "global"
Allocation parse_allocation(const std::string& name);  // throws naming the valid ones

struct PruneOptions {
  std::string method = "ispasp";  // a name in methods() (prune/methods.h)
  TargetKind target_kind = TargetKind::Keep;
  double target = 0.5;            // a fraction in (0, 1] unless target_kind is None
  Allocation allocation = Allocation::Uniform;
  GuardRails rails;               // rails.input_keep: the input group's own keep fraction
  // Input-feature pruning (--prune-inputs): adds the input group (prune/group.h) first.
  bool prune_inputs = false;
  // Residual streams are groups too (--prune-residual; prune/group.h). Off by default, as in
  // the official i-SpaSP and PFP code: block-inner channels only.
  bool prune_residual = false;
  // Prune only these groups (by name, prune/group.h; --groups); empty: every group. A name
  // the model has no group for is an error listing the names it has.
  std::vector<std::string> only_groups;
  // Fold what removed units still emit into their consumers (prune/slice.h
  // fold_removed_shift), so the cut model computes what the weight-masked one does. Off by
  // default: a trained BN network's weight-masked channel emits ReLU(BN(0)), far from what
  // the channel carried, and keeping it measured worse than dropping the channel (ResNet-20
  // on Fashion-MNIST, magnitude, keep 0.75, no fine-tune: 21.2% with the fold, 69.4% without).
  bool fold_shift = false;
  int ispasp_iterations = 20;
  std::uint64_t seed = 0;
  // Reuse module outputs that cannot have changed since the previous group's pass
  // (prune/activation_memo.h): the same scores, fewer passes. Off: every pass runs in full.
  bool reuse_activations = true;
  // Consumer refit (prune/refit.h; beyond the seed papers): after each cut, re-solve the
  // consumer's weights by ridge-regularised least squares toward the dense model's outputs.
  bool refit = false;
  double refit_ridge = 1e-2;  // lambda / mean non-zero eigenvalue of the Gram matrix (refit.h)
  // Called after each group's cut (and refit) by the score and select methods, which prune
  // block by block, input to output: i-SpaSP's per-block fine-tune (ALGORITHMS.md §1.4)
  // hooks in here (prune/schedule.h FineTuneRecipe::block_steps). Whole-model methods (PFP,
  // SAP) cut every group at once and never call it.
  std::function<void(nn::Module& model, const Group& group)> after_cut;
  // Structured SAP's PQ Index hyperparameters (p, q, eta_r, gamma, beta; prune/pqi.h).
  SapOptions sap;
};

}  // namespace shrink::prune
