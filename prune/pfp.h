// PFP — Provable Filter Pruning (Liebenwein, Baykal, Lang, Feldman, Rus, ICLR 2020;
// ALGORITHMS.md §2). Each group's channels get an empirical sensitivity from the consumer
// layer's weights and input activations (§2.1), one global ε sets every layer's sample
// complexity and hence its width so that the shrunk network meets a parameter or FLOP
// budget (§2.2), and the channels are kept by top sensitivity (PFPNet, the paper's tables)
// or sampled with importance reweighting (PFPNetRand, Alg. 1). Layers are rebuilt smaller
// through shrink_group; nothing is masked.
//
// Files: pfp_sensitivity.cpp (§2.1, |S|), pfp_allocation.cpp (§2.2: cost fit, ε search,
// outer loop), pfp.cpp (keep / sample / reweight, schedule).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "prune/allocation.h"
#include "prune/criteria.h"
#include "prune/group.h"

namespace shrink::prune {

enum class PfpBudget { Parameters, Flops };  // what target_ratio measures (nn/flops.h for FLOPs)

struct PfpOptions {
  double delta = 1e-12;          // failure probability δ: 1e-12 MNIST, 1e-16 CIFAR/ImageNet (§2.2)
  bool sampling = false;         // PFPNetRand (Alg. 1) instead of deterministic top-k (PFPNet)
  PfpBudget budget = PfpBudget::Parameters;
  std::int64_t num_samples = -1; // |S|: -1 = the §2.2 rule, capped to the data; else min(this, data)
  double tolerance = 0.005;      // outer loop stops when |achieved - target| <= tolerance * target
  double reference = 0;          // cost the ratio is relative to; 0 = the model as passed in
  double input_keep = 0;         // (0, 1]: the input group's width is held at this fraction, outside
                                 // the ε search (--keep-inputs); 0: the search sizes it like any layer
  KeepCounts input_reference;    // input_keep is of this width (GuardRails::reference); else the current
};

struct PfpResult {
  std::map<std::string, Scores> sensitivities;   // s_j per group name (§2.1)
  std::map<std::string, Scores> probabilities;   // p_j = s_j / S_l
  std::map<std::string, std::int64_t> keep;      // n_l per group (after pfp_prune: units kept)
  double epsilon = 0;                            // the global ε of the allocation
  double achieved_ratio = 0;                     // cost(widths) / reference, in the budget's measure
  std::int64_t samples = 0;                      // |S| actually used
};

// ---- §2.1 empirical sensitivity ----
// s_j = max over rows x of `activations` and outputs i of g_ij(x), with
// g_ij = max(W⁺_ij a_j / z⁺_i, W⁻_ij a_j / z⁻_i), z^± = Σ_k W^±_ik a_k and a term set to 0
// when |z| <= float eps. weight is (out, in); activations (rows, in). Rows with negative
// entries are split into relu(a) and relu(-a), each a sample of its own. A conv consumer
// fits by passing its kernel as (out, in·k·k) and unfolded patches, then taking the max
// over each channel's k·k columns.
Scores pfp_sensitivity(const Tensor& weight, const Tensor& activations);
// Every group's s from one forward pass of the current network over `inputs`.
std::map<std::string, Scores> pfp_sensitivities(nn::Module& model, const std::vector<Group>& groups,
                                                const Tensor& inputs);
// p_j = s_j / Σ s; uniform when every s_j is 0.
Scores pfp_probabilities(const Scores& sensitivities);
// |S| = ceil(3 log(8 η* Ση / δ)), η = per-sample output elements of each weighted layer (§2.2).
std::int64_t pfp_sample_size(const nn::Module& model, const Shape& sample_shape, double delta);

// ---- §2.2 sample complexity and allocation ----
// Σ_j 1 - (1 - p_j)^m: expected number of distinct channels in m draws from p.
double pfp_expected_unique(const Scores& probabilities, double draws);
// Cost (parameters, or FLOPs per sample of shape `sample_shape`) of the network after each
// group g is shrunk to widths[g.name] units (groups absent keep their size): size_after
// (prune/allocation.h), the one cost model; with no widths, the model's own count.
double pfp_cost(const nn::Module& model, const std::vector<Group>& groups, const Shape& sample_shape,
                const std::map<std::string, std::int64_t>& widths, PfpBudget budget);
// Sensitivities, then the global-ε search for widths meeting target_ratio of the reference
// cost. Changes nothing in the model.
PfpResult pfp_allocate(nn::Module& model, const std::vector<Group>& groups, const Calibration& calib,
                       double target_ratio, const PfpOptions& options = {});

// ---- pruning ----
// PFPNetRand's draw (Alg. 1): M draws from Multinomial(p), M found by bisection so that the
// expected distinct count is `keep`. Returns the drawn channels (sorted) and each one's
// weight count_j / (M p_j), which makes the reweighted layer an unbiased estimate of z.
struct PfpSample {
  std::vector<std::int64_t> kept;
  std::vector<double> scale;
  std::int64_t draws = 0;
};
PfpSample pfp_sample(const Scores& probabilities, std::int64_t keep, Generator& gen);

// Allocates and shrinks every group (PFPNet: the `keep` channels of largest s; PFPNetRand:
// the sampled ones, consumer columns scaled; of up to 32 draws, the first whose widths' cost
// lands near the budget, since a draw's distinct count is n_l only in expectation). Returns
// the allocation with `keep` set to the units actually kept and achieved_ratio measured on the shrunk model. `fold_shift`: the
// shift fold of prune/slice.h for PFPNet; PFPNetRand never folds (its reweighting is the
// compensation).
PfpResult pfp_prune(nn::Module& model, std::vector<Group>& groups, const Calibration& calib,
                    double target_ratio, const PfpOptions& options, Generator& gen,
                    nn::Optimizer* optimizer = nullptr, bool fold_shift = true);

// Hyperharmonic prune-ratio schedule of the iterative procedure (§2.3):
// PR_i = 1 - 1/(i+1)^alpha for i = 1..rounds (fraction of the dense model removed).
std::vector<double> pfp_hyperharmonic_schedule(int rounds, double alpha);

}  // namespace shrink::prune
