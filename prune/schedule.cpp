#include "prune/schedule.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "nn/batch_norm_recalibration.h"
#include "nn/flops.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "prune/calibration.h"

namespace shrink::prune {

namespace {

void fine_tune(nn::Module& model, const FineTuneRecipe& recipe, const FineTuneData& data, int round,
               Device device, const ScheduleProgress& progress, ScheduleRound& out) {
  nn::SGD optimizer(model.named_parameters(), recipe.lr, recipe.momentum, 0.0, recipe.weight_decay);
  const auto lr = nn::parse_schedule(recipe.lr_schedule, recipe.epochs);
  for (int epoch = 0; epoch < recipe.epochs; ++epoch) {
    optimizer.set_lr(lr->lr_at(recipe.lr, epoch));
    const EpochBatches batches = data(round, epoch);
    if (progress.epoch_started) progress.epoch_started(round, epoch + 1, batches.steps);
    const nn::EpochResult r =
        nn::train_epoch(model, optimizer, batches.source, device, recipe.label_smoothing, progress.step);
    if (progress.epoch_finished) progress.epoch_finished(round, epoch + 1, r);
    out.fine_tune.push_back(r);
  }
}

// A few steps after one group's cut; each block's batches come from an epoch of its own
// (numbered from 1000 so they never collide with the round's fine-tuning epochs).
void block_fine_tune(nn::Module& model, const FineTuneRecipe& recipe, const FineTuneData& data, int round, int block,
                     Device device) {
  nn::SGD optimizer(model.named_parameters(), recipe.lr, recipe.momentum, 0.0, recipe.weight_decay);
  const EpochBatches batches = data(round, 1000 + block);
  std::int64_t steps = 0;
  const nn::BatchSource limited = [&]() -> std::optional<nn::LabeledBatch> {
    if (steps++ >= recipe.block_steps) return std::nullopt;
    return batches.source();
  };
  nn::train_epoch(model, optimizer, limited, device, recipe.label_smoothing);
}

}  // namespace

double round_target(TargetKind kind, double total, int round, int rounds, double now) {
  SHRINK_CHECK(rounds >= 1 && round >= 1 && round <= rounds, "prune schedule: round ", round, " of ", rounds,
               " is out of range");
  if (kind == TargetKind::None) return 0;
  if (kind == TargetKind::Keep) return std::pow(total, static_cast<double>(round) / rounds);
  SHRINK_CHECK(now > 0, "prune schedule: the model's current size fraction must be positive, got ", now);
  const double goal = std::pow(total, static_cast<double>(round) / rounds);
  return std::min(1.0, goal / now);
}

KeepCounts start_widths(nn::Module& model, const Shape& sample_shape, const PruneOptions& options) {
  KeepCounts widths;
  for (const Group& g : build_groups(model, sample_shape, GroupOptions{options.prune_inputs, options.prune_residual}))
    widths[g.name] = g.size;
  return widths;
}

ScheduleReport prune_schedule(nn::Module& model, const Tensor& train_inputs, const Tensor& train_labels,
                              const Shape& sample_shape, const ScheduleOptions& options, Generator& gen,
                              Device device, const FineTuneData& data, const ScheduleProgress& progress) {
  SHRINK_CHECK(options.rounds >= 1, "prune schedule: rounds must be >= 1, got ", options.rounds);
  SHRINK_CHECK(options.first_round >= 1 && options.first_round <= options.rounds + 1, "prune schedule: first_round ",
               options.first_round, " is outside 1..", options.rounds + 1);
  SHRINK_CHECK(options.first_round == 1 || (options.params_start > 0 && options.flops_start > 0),
               "prune schedule: resuming at round ", options.first_round,
               " needs the model's parameters and FLOPs at the schedule's start");
  SHRINK_CHECK(options.fine_tune.epochs >= 0, "prune schedule: fine-tune epochs must be >= 0, got ",
               options.fine_tune.epochs);
  SHRINK_CHECK((options.fine_tune.epochs == 0 && options.fine_tune.block_steps == 0) || static_cast<bool>(data),
               "prune schedule: fine-tuning needs training batches (FineTuneData)");
  SHRINK_CHECK(options.fine_tune.block_steps >= 0, "prune schedule: per-block fine-tune steps must be >= 0, got ",
               options.fine_tune.block_steps);
  PruneOptions round_options = options.prune;
  const TargetKind kind = round_options.target_kind;
  const double total = round_options.target;
  const double params_start =
      options.params_start > 0 ? options.params_start : static_cast<double>(model.num_parameters());
  const double flops_start = options.flops_start > 0
                                 ? options.flops_start
                                 : static_cast<double>(nn::flops_per_sample(model, sample_shape));
  // Keep fractions are of these widths. Without saved ones a resumed schedule takes the
  // widths it has now, k^((first_round - 1) / R) of the start's, as its reference: its rounds
  // then count from there.
  const int reference_round = options.widths_start.empty() ? options.first_round : 1;
  if (kind == TargetKind::Keep || options.prune.rails.input_keep > 0)
    round_options.rails.reference =
        options.widths_start.empty() ? start_widths(model, sample_shape, options.prune) : options.widths_start;
  ScheduleReport report;
  for (int round = options.first_round; round <= options.rounds; ++round) {
    const double now = kind == TargetKind::Params ? static_cast<double>(model.num_parameters()) / params_start
                       : kind == TargetKind::Flops
                           ? static_cast<double>(nn::flops_per_sample(model, sample_shape)) / flops_start
                           : 1.0;
    ScheduleRound r;
    r.target = kind == TargetKind::Keep
                   ? round_target(kind, total, round - reference_round + 1, options.rounds, now)
                   : round_target(kind, total, round, options.rounds, now);
    if (kind != TargetKind::None) round_options.target = r.target;
    if (options.prune.rails.input_keep > 0)  // the input features' own fraction compounds the same way
      round_options.rails.input_keep = round_target(TargetKind::Keep, options.prune.rails.input_keep,
                                                    round - reference_round + 1, options.rounds, 1.0);
    round_options.seed = options.seed + static_cast<std::uint64_t>(round);
    const Calibration calib = sample_calibration(train_inputs, train_labels, options.calib_samples, gen, device);
    int block = 0;
    if (options.fine_tune.block_steps > 0)
      round_options.after_cut = [&](nn::Module& m, const Group&) {
        block_fine_tune(m, options.fine_tune, data, round, ++block, device);
      };
    r.prune = prune_model(model, calib, round_options, sample_shape);
    if (options.recalibrate_bn) {  // part of the round's pruning time
      const auto start = std::chrono::steady_clock::now();
      r.recalibrated_batch_norms = nn::recalibrate_batch_norm(model, calib.inputs);
      r.prune.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    report.prune_seconds += r.prune.seconds;
    if (progress.pruned) progress.pruned(round, r.prune);
    if (options.fine_tune.epochs > 0) fine_tune(model, options.fine_tune, data, round, device, progress, r);
    if (progress.round_finished) progress.round_finished(round, r);
    report.rounds.push_back(std::move(r));
  }
  return report;
}

}  // namespace shrink::prune
