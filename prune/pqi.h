// PQI (PQ Index, Diao et al. ICLR 2023, "Pruning Deep Neural Networks from a Sparsity
// Perspective", ALGORITHMS.md §3.1): a sparsity measure of a weight vector and the rule
// SAP (Sparsity-informed Adaptive Pruning) derives a prune count from. All in double.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace shrink::prune {

// SAP hyperparameters (§3.4 defaults: p = 0.5, q = 1, eta_r = 0, gamma = 1, beta = 0.9).
struct SapOptions {
  double p = 0.5;      // 0 < p < q
  double q = 1.0;
  double eta_r = 0.0;  // tolerance of Theorem 2's bound
  double gamma = 1.0;  // scales the prune ratio 1 - r/d
  double beta = 0.9;   // maximum fraction pruned per step
};

// Throws naming the first out-of-range hyperparameter (NaN and Inf included) and its flag:
// flag_prefix + "p", "q", "eta", "gamma", "beta" ("--" for shrink-sparsify, "--sap-" for
// shrink-prune).
void check_sap_options(const SapOptions& options, const std::string& flag_prefix = "--");

// I_{p,q}(w) = 1 - d^{1/q - 1/p} ||w||_p / ||w||_q
//            = 1 - (mean |w|^p)^{1/p} / (mean |w|^q)^{1/q},
// over the d nonzero entries of w (zeros are masked entries, as in the official code).
// 0 for a constant vector; 0 when w has no nonzero entry.
double pq_index(std::span<const double> w, double p = 0.5, double q = 1.0);
double pq_index(const Tensor& w, double p = 0.5, double q = 1.0);

// r before the ceiling: d (1 + eta_r)^{-q/(q-p)} (1 - I)^{qp/(q-p)}  (Theorem 2).
double pqi_keep_bound(std::int64_t d, double index, const SapOptions& options);
// c = floor(d * min(gamma (1 - r/d), beta)), clamped >= 0.
std::int64_t pqi_prune_count(std::int64_t d, std::int64_t r, const SapOptions& options);

// One SAP decision over a vector.
struct PqiDecision {
  double index = 0;        // I_{p,q}
  std::int64_t d = 0;      // nonzero entries
  double keep_bound = 0;   // r before the ceiling
  std::int64_t keep = 0;   // r = ceil(keep_bound)
  std::int64_t prune = 0;  // c
};
PqiDecision pqi_decide(std::span<const double> w, const SapOptions& options);

}  // namespace shrink::prune
