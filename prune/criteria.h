// Pruning criteria: each decides WHICH units of a group to keep; allocation (prune/
// allocation.h) decides HOW MANY; prune/slice.h rewrites. They compose.
//
// Score-based criteria return one score per unit (higher = more important) and the
// top-k by score is kept. Selection-based criteria (i-SpaSP, GFS, PFP's sampling variant)
// return the kept set directly, because their choice is not a ranking.
//
// Every criterion reads the model as it is now (already-pruned upstream layers included),
// runs it in eval mode, restores the train/eval mode it found, and leaves the parameters'
// gradients untouched.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"
#include "nn/module.h"
#include "prune/group.h"

namespace shrink::prune {

// Calibration data: a batch of real samples (inputs as the model takes them, int64 labels).
class ActivationMemo;  // prune/activation_memo.h
struct Calibration {
  Tensor inputs;
  Tensor labels;
  // Set by prune_model for its passes: module outputs that cannot have changed since the
  // previous pass are reused (taylor, head-importance). Null: every pass runs in full.
  std::shared_ptr<ActivationMemo> memo = nullptr;
};

using Scores = std::vector<double>;

// Indices of the k largest scores, sorted ascending (ties broken by lower index; NaN
// counts as the smallest score). Throws unless 0 <= k <= scores.size().
std::vector<std::int64_t> top_k(const Scores& scores, std::int64_t k);

// ---- score-based (prune/criteria_basic.cpp) ----
// L1 (p = 1, FT / Li et al. 2017) or L2 (p = 2, SoftNet / He et al. 2018) norm of each
// unit's incoming weights: the producers' "weight" slices along the group's axis (a Linear's
// row, a conv's filter; every producer's of a residual stream, as one vector); for the
// input group (no producer, prune/group.h) the consumer's column of each input feature.
// The bias is left out, as in both papers' filter norms.
Scores score_magnitude(const nn::Module& model, const Group& group, int p);
// Uniform random scores in [0, 1) from `gen` (the random baseline).
Scores score_random(const Group& group, Generator& gen);
// First-order Taylor (Molchanov et al. 2017): |sum over samples and positions of
// activation x dLoss/dactivation| at what each consumer reads (summed over consumers for a
// residual stream, which is read at several depths), Loss = mean cross-entropy of the
// model's logits on the calibration batch. For the input group the activation is the model
// input as the first layer reads it, so the score is |sum input x dLoss/dinput|.
Scores score_taylor(nn::Module& model, const Group& group, const Calibration& calib);
// Head importance (Michel et al. 2019, "Are Sixteen Heads Really Better than One?", eq. 2):
// E_x |dLoss(x)/dxi_h| for a mask xi_h on each unit's output, i.e. per sample |sum over the
// unit's positions and entries of activation x dLoss/dactivation| at the consumer's read,
// then summed over samples. Taylor's score with the absolute value per sample; for attention
// heads the read is out_proj's input and a unit is a head's head_dim entries.
Scores score_head_importance(nn::Module& model, const Group& group, const Calibration& calib);

// ---- selection-based ----
// i-SpaSP (Wolfe & Kyrillidis 2022, ALGORITHMS.md §1.2-1.3): CoSaMP-style support recovery
// for the block A = input..what the consumer reads, B = the consumer followed by its
// BatchNorm when a BatchNorm is the consumer's only reader (eval mode: the residual is
// measured after conv2 + BN2, before any add, as the official code does), keeping `keep`
// units. H = A(X) is computed from calib.inputs through the model as it is now (the caller
// prunes upstream blocks first). `batch_size` bounds the samples held in one
// forward/backward of B. For the input group H = X (the input as the first layer reads it)
// and B is the first layer. A residual stream (read by several layers; beyond the paper,
// whose code never prunes it) has one block per reader, each on its own H: J, phi and the
// activation mass are sums over them. Returns `keep` sorted indices. (prune/ispasp.cpp)
std::vector<std::int64_t> select_ispasp(nn::Module& model, const Group& group, std::int64_t keep,
                                        const Calibration& calib, int iterations = 20,
                                        std::int64_t batch_size = 256);
// Greedy forward selection (Ye et al. 2020, ALGORITHMS.md §1.6): from S = {}, add, one at
// a time, the unit j not in S whose subnetwork (consumer restricted to S+{j}, then the rest
// of the model) has the lowest cross-entropy on the calibration batch, until `keep` are
// chosen. O(keep x units) forward evaluations; see prune/gfs.cpp for one evaluation's cost.
// Returns `keep` sorted indices.
std::vector<std::int64_t> select_gfs(nn::Module& model, const Group& group, std::int64_t keep,
                                     const Calibration& calib);

// ---- helpers shared by the criteria (prune/criteria_basic.cpp) ----
// The channel axis of an activation that carries `units` channels: axis 1 of a 4-D
// (N, C, H, W) map, the last axis otherwise ((N, m) or (N, T, m)). Throws if its size is
// not `units`.
std::int64_t channel_axis(const Tensor& activation, std::int64_t units);
// Sum over every axis but `axis` (samples and positions), as doubles.
Scores sum_per_channel(const Tensor& t, std::int64_t axis);
// Top-level child names of a Sequential model, in order (throws for other models; GFS).
std::vector<std::string> chain_names(const nn::Module& model);
// The name of the child after `name` in the chain, or "" when `name` is the last.
std::string next_in_chain(const nn::Module& model, const std::string& name);
// What the group's (first) consumer reads for `inputs`, as it takes it, in eval mode without
// gradients, computed `batch_size` samples at a time (by a hook on the consumer, on any
// graph: prune/tap.h) and returned as those batches.
std::vector<Tensor> consumer_reads(nn::Module& model, const Group& group, const Tensor& inputs,
                                   std::int64_t batch_size);
// A read in unit view: a flattened read (N, units * block), or a token read (N, T, units *
// block) of attention heads, becomes (rows, units, block, 1), so that axis 1 indexes the
// group's units; any other read is returned as it is.
Tensor unit_view(const Tensor& read, std::int64_t units);
// The group's activation H: consumer_reads in unit view.
std::vector<Tensor> group_activation(nn::Module& model, const Group& group, const Tensor& inputs,
                                     std::int64_t batch_size);

// Sets every parameter of a model to requires_grad = false for its lifetime (so a criterion's
// backward pass neither computes nor accumulates weight gradients), then restores them.
class FrozenParameters {
 public:
  explicit FrozenParameters(const nn::Module& model);
  ~FrozenParameters();
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<Tensor> frozen_;
};

// Puts a model in eval mode for its lifetime, then restores the mode it found.
class EvalMode {
 public:
  explicit EvalMode(nn::Module& model) : model_(model), was_training_(model.is_training()) {
    model.eval();
  }
  ~EvalMode() { model_.train(was_training_); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  nn::Module& model_;
  bool was_training_;
};

}  // namespace shrink::prune
