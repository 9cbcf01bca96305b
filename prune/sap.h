// SAP: Sparsity-informed Adaptive Pruning with the PQ Index (Diao et al. ICLR 2023,
// ALGORITHMS.md §3), in two forms, plus the baselines of the paper's harness.
//
// Structured (ours; no public tool has it): per group, the PQI of the vector of unit norms
// (L2 norm of each unit's incoming weights) gives c = how many units to drop; the units
// with the largest norms stay (never fewer than one). The group shrinks physically.
//
// Unstructured (the paper's Alg. 1): per scope (global / layer / neuron, §3.2), I, r, c
// and the threshold thr = sorted_asc(|w|)[c]; entries with |w| < thr go. The survivors are
// stored physically: every Linear becomes an nn::SparseLinear and every Conv2d (grouped and
// depthwise too) an nn::SparseConv2d (CSR); a sparse layer is rebuilt with fewer entries. Each *_round prunes and then rewinds the survivors to
// their initial values (lottery-ticket rewind); the caller trains between rounds.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"
#include "nn/optim.h"
#include "prune/group.h"
#include "prune/pqi.h"

namespace shrink::prune {

// ---- structured (prune/sap.cpp) ----
struct StructuredSapDecision {
  std::string group;
  std::int64_t units = 0;  // before pruning
  PqiDecision pqi;         // over the unit norms
  std::int64_t keep = 0;   // max(1, units - c)
};
// L2 norm of each unit's incoming weights: the producer's weight sliced along the group's axis.
std::vector<double> unit_norms(const nn::Module& model, const Group& group);
std::vector<StructuredSapDecision> sap_structured_decide(const nn::Module& model,
                                                         const std::vector<Group>& groups,
                                                         const SapOptions& options = {});
// Group name -> units to keep.
std::map<std::string, std::int64_t> sap_structured_keep(const nn::Module& model,
                                                        const std::vector<Group>& groups,
                                                        const SapOptions& options = {});
// Decides every group on the unpruned model, then shrinks each to its `keep` largest-norm
// units. Returns group name -> PQI of its unit norms.
std::map<std::string, double> sap_structured_prune(nn::Module& model, std::vector<Group>& groups,
                                                   const SapOptions& options = {},
                                                   nn::Optimizer* optimizer = nullptr, bool fold_shift = true);

// ---- unstructured (prune/sap_unstructured.cpp) ----
enum class Scope { Global, Layer, Neuron };
Scope parse_scope(const std::string& name);  // "global", "layer", "neuron"
const char* scope_name(Scope scope);

struct ScopeReport {
  std::string name;          // "global", a layer path ("1"), or a row ("1[17]")
  std::int64_t d = 0;        // nonzero stored weights before the round
  double pqi = 0;            // I_{p,q} of those weights
  double keep_bound = 0;     // r before the ceiling (SAP only; 0 for LT/OS)
  std::int64_t prune = 0;    // c
  double threshold = 0;      // thr = sorted_asc(score)[c]
  std::int64_t removed = 0;  // entries with score < thr (<= c; stored zeros also go)
};
struct RoundReport {
  std::vector<ScopeReport> scopes;
  std::int64_t remaining_before = 0, remaining = 0;    // stored weights of prunable layers
  std::map<std::string, std::int64_t> layer_remaining;  // per layer, after the round
};

// Weights (Linear, Conv2d: all; SparseLinear, SparseConv2d: stored) of the prunable layers,
// classifier included (the paper prunes every weight of dim > 1; any other layer with a
// weight of dim > 1 makes the rounds an Error naming it).
std::int64_t remaining_weights(const nn::Module& model);

// One SAP step: c from the PQI rule per scope unit, magnitudes of the current weights.
// Rewinds to `init_state` afterwards unless it is empty.
RoundReport sap_unstructured_round(nn::Module& model, const nn::StateDict& init_state, Scope scope,
                                   const SapOptions& options = {});
// LT (Frankle & Carbin): c = floor(fraction * d) per scope unit by the current magnitudes.
RoundReport lottery_round(nn::Module& model, const nn::StateDict& init_state, Scope scope,
                          double fraction = 0.2);
// OS: c = floor(fraction * d) per scope unit, ranked by |W| of `reference_state`, the first
// dense trained model (dense "weight" keys); after t rounds, one-shot pruning to 0.8^t.
// The reference must hold exactly the model's tensors at the model's shapes, with the
// dense "<layer>.weight" where the model has a sparse layer; otherwise an Error
// names `reference_name` (e.g. its file), the tensor and both shapes, and nothing is pruned.
RoundReport one_shot_mask_round(nn::Module& model, const nn::StateDict& init_state,
                                const nn::StateDict& reference_state, Scope scope,
                                double fraction = 0.2,
                                const std::string& reference_name = "reference state");

// Rewind to initialization: a sparse layer gets each stored value from its place in the
// dense "<layer>.weight" of `init_state` (or its "<layer>.values" when the structure is
// the same); every other parameter and buffer with a matching name and shape is copied.
void rewind(nn::Module& model, const nn::StateDict& init_state);

}  // namespace shrink::prune
