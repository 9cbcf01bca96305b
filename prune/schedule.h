// The prune -> fine-tune schedule shrink-prune runs, for a C++ user to call: `rounds`
// rounds, each sampling a calibration batch, pruning with prune_model to this round's
// share of the overall target, and optionally fine-tuning with a fixed recipe.
//
// Per-round targets compound to the overall one from the model as it was when the schedule
// started: after round r a keep fraction k has kept k^(r/R) of each group's starting width
// (GuardRails::reference holds those widths, so rounding never stalls: of the current width,
// 0.5^(1/1000) of 300 rounds back to 300 each round), and a parameter or FLOP fraction f
// reached f^(r/R) (each round asks for min(1, f^(r/R) / now)).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"
#include "nn/module.h"
#include "nn/training.h"
#include "prune/options.h"
#include "prune/pruner.h"

namespace shrink::prune {

// Fine-tuning after each round: SGD with momentum and weight decay, the learning rate
// following `lr_schedule` (nn/schedule.h) over `epochs`, cross-entropy with label smoothing.
struct FineTuneRecipe {
  int epochs = 0;  // 0: no fine-tuning
  double lr = 0.01;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  double label_smoothing = 0.1;
  std::string lr_schedule = "cosine";
  // i-SpaSP's per-block fine-tune (ALGORITHMS.md §1.4, the official code runs an epoch per
  // block): after each group's cut, this many SGD steps at `lr` (fresh momentum, the same
  // decay and smoothing) on training batches, so that later groups are chosen on a network
  // that has recovered. 0: none. Score and select methods only (PruneOptions::after_cut).
  std::int64_t block_steps = 0;
};

// One epoch's training batches and their count. prune/ does not read data sets itself:
// the caller supplies them (shrink-prune: a shuffled DataLoader seeded per round).
struct EpochBatches {
  nn::BatchSource source;
  std::int64_t steps = 0;
};
using FineTuneData = std::function<EpochBatches(int round, int epoch)>;

struct ScheduleOptions {
  PruneOptions prune;  // target_kind and target are the overall target; seed is unused
  int rounds = 1;
  std::int64_t calib_samples = 1024;
  std::uint64_t seed = 0;  // round r prunes with seed + r
  FineTuneRecipe fine_tune;
  // After each round's cut (and refit), re-estimate every BatchNorm's running statistics on
  // the round's calibration batch (nn/batch_norm_recalibration.h; beyond the seed papers:
  // EagleEye's adaptive BatchNorm). Off: the cut model keeps the dense model's statistics.
  bool recalibrate_bn = false;
  // Resuming a schedule after round first_round - 1 (the model and `gen` as they were then):
  // the rounds before it are skipped, and per-round targets compound from the size the
  // model had when the schedule first started (params_start, flops_start; 0: measured now,
  // which is right only when first_round is 1). first_round = rounds + 1 runs no round.
  int first_round = 1;
  double params_start = 0, flops_start = 0;
  // Each group's units when the schedule first started (start_widths); empty: measured when
  // prune_schedule starts. A resumed schedule without them compounds its keep fractions
  // from the round it resumes at.
  KeepCounts widths_start;
};

struct ScheduleRound {
  double target = 0;  // the fraction this round asked prune_model for (unused for None)
  PruneReport prune;
  std::int64_t recalibrated_batch_norms = 0;  // by recalibrate_bn after the cut
  std::vector<nn::EpochResult> fine_tune;  // one per epoch
};
// Hooks for progress output; any may be empty. Rounds and epochs count from 1.
struct ScheduleProgress {
  std::function<void(int round, const PruneReport& report)> pruned;
  std::function<void(int round, int epoch, std::int64_t steps)> epoch_started;
  std::function<void(std::int64_t step, const nn::EpochResult& running)> step;
  std::function<void(int round, int epoch, const nn::EpochResult& result)> epoch_finished;
  // After a round's pruning and fine-tuning: the point a resumed schedule continues from.
  std::function<void(int round, const ScheduleRound& result)> round_finished;
};

struct ScheduleReport {
  std::vector<ScheduleRound> rounds;
  double prune_seconds = 0;  // sum of the rounds' pruning wall time, fine-tuning excluded
};

// This round's fraction for prune_model (the rule in the file comment): for Keep, of the
// starting widths. `now` is the model's current parameters or FLOPs as a fraction of the
// schedule's start (unused for Keep).
double round_target(TargetKind kind, double total, int round, int rounds, double now);

// Every group's units (name -> size), the groups `options` would prune (inputs and residual
// streams as it asks): what ScheduleOptions::widths_start holds.
KeepCounts start_widths(nn::Module& model, const Shape& sample_shape, const PruneOptions& options);

// Runs the schedule on `model` (already on `device`). The calibration batch of each round
// is sampled from (train_inputs, train_labels) with `gen`. `data` is required when
// fine_tune.epochs > 0.
ScheduleReport prune_schedule(nn::Module& model, const Tensor& train_inputs, const Tensor& train_labels,
                              const Shape& sample_shape, const ScheduleOptions& options, Generator& gen,
                              Device device, const FineTuneData& data = {},
                              const ScheduleProgress& progress = {});

}  // namespace shrink::prune
