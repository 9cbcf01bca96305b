// shrink-prune: prunes a checkpoint to a target with one of the structured methods,
// optionally fine-tunes, and writes a smaller checkpoint; prints the before/after report.
// With --checkpoint-dir a multi-round schedule saves its state after every round, and
// --resume DIR continues from the next round to the result an uninterrupted run reaches.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include <nlohmann/json.hpp>

#include "core/outside_json.h"
#include "core/random.h"
#include "core/strings.h"
#include "datasets/registry.h"
#include "nn/checkpoint.h"
#include "nn/flops.h"
#include "nn/fold_batch_norm.h"
#include "nn/models.h"
#include "nn/train_state.h"
#include "prune/methods.h"
#include "prune/pruner.h"
#include "prune/schedule.h"
#include "tools/common/cli.h"
#include "tools/common/data_options.h"
#include "tools/common/model_for_data.h"
#include "tools/common/validators.h"
#include "tools/common/progress.h"
#include "tools/common/resume.h"
#include "tools/common/summary.h"

namespace {

struct Options {
  std::string checkpoint, data = "fashion-mnist", out = "pruned.safetensors", allocation = "uniform";
  shrink::prune::ScheduleOptions schedule;
  double keep = 0, target_params = 0, target_flops = 0;
  std::int64_t batch_size = 64;
  bool json = false;
  std::string checkpoint_dir, resume;
  int keep_checkpoints = 2;
  shrink::tools::DataOptions images;  // --input-size, --channels, --augment (fine-tuning)
  shrink::tools::CommonOptions common;
};

// The run's settings, keyed by flag (tools/common/resume.h); a target not given is null.
nlohmann::json settings_json(const Options& o, bool keep, bool params, bool flops) {
  const auto& po = o.schedule.prune;
  auto given = [](bool is, double v) { return is ? nlohmann::json(v) : nlohmann::json(); };
  nlohmann::json settings = {{"checkpoint", o.checkpoint}, {"method", po.method}, {"keep", given(keep, o.keep)},
          {"target-params", given(params, o.target_params)}, {"target-flops", given(flops, o.target_flops)},
          {"data", o.data}, {"calib-samples", o.schedule.calib_samples}, {"allocation", o.allocation},
          {"round-to", po.rails.multiple}, {"max-layer-ratio", po.rails.max_layer_ratio},
          {"ispasp-iterations", po.ispasp_iterations}, {"iterations", o.schedule.rounds},
          {"prune-inputs", po.prune_inputs}, {"keep-inputs", po.rails.input_keep},
          {"prune-residual", po.prune_residual}, {"fold-shift", po.fold_shift}, {"groups", po.only_groups},
          {"refit", po.refit}, {"refit-ridge", po.refit_ridge}, {"recalibrate-bn", o.schedule.recalibrate_bn},
          {"sap-p", po.sap.p}, {"sap-q", po.sap.q},
          {"sap-eta", po.sap.eta_r}, {"sap-gamma", po.sap.gamma}, {"sap-beta", po.sap.beta},
          {"finetune-epochs", o.schedule.fine_tune.epochs}, {"lr", o.schedule.fine_tune.lr},
          {"block-finetune-steps", o.schedule.fine_tune.block_steps},
          {"batch-size", o.batch_size}, {"out", o.out}, {"json", o.json},
          {"keep-checkpoints", o.keep_checkpoints}, {"seed", o.common.seed},
          {"threads", o.common.threads}, {"device", o.common.device}};
  shrink::tools::add_data_settings(settings, o.images, /*with_augment=*/true);
  return settings;
}

const std::set<std::string> kOverridable = {"threads", "out", "json", "keep-checkpoints"};

// Applies saved settings; returns which target was given (keep, params, flops).
std::array<bool, 3> apply_settings(Options& o, const nlohmann::json& s, const std::string& dir) {
  using shrink::tools::saved_setting;
  auto& po = o.schedule.prune;
  o.checkpoint = saved_setting<std::string>(s, "checkpoint", dir);
  po.method = saved_setting<std::string>(s, "method", dir);
  std::array<bool, 3> given{};
  const char* targets[] = {"keep", "target-params", "target-flops"};
  double* values[] = {&o.keep, &o.target_params, &o.target_flops};
  for (int i = 0; i < 3; ++i) {
    given[i] = s.contains(targets[i]) && !s.at(targets[i]).is_null();
    if (given[i]) *values[i] = saved_setting<double>(s, targets[i], dir);
  }
  o.data = saved_setting<std::string>(s, "data", dir);
  o.schedule.calib_samples = saved_setting<std::int64_t>(s, "calib-samples", dir);
  o.allocation = saved_setting<std::string>(s, "allocation", dir);
  po.rails.multiple = saved_setting<decltype(po.rails.multiple)>(s, "round-to", dir);
  po.rails.max_layer_ratio = saved_setting<double>(s, "max-layer-ratio", dir);
  po.ispasp_iterations = saved_setting<decltype(po.ispasp_iterations)>(s, "ispasp-iterations", dir);
  if (s.contains("refit")) {  // states saved before the refit existed ran without it
    po.refit = saved_setting<bool>(s, "refit", dir);
    po.refit_ridge = saved_setting<double>(s, "refit-ridge", dir);
  }
  // Absent from states saved before the recalibration existed: those runs had it off.
  o.schedule.recalibrate_bn = s.contains("recalibrate-bn") && saved_setting<bool>(s, "recalibrate-bn", dir);
  if (s.contains("sap-p")) {  // states saved before these options existed ran with the defaults
    po.sap.p = saved_setting<double>(s, "sap-p", dir);
    po.sap.q = saved_setting<double>(s, "sap-q", dir);
    po.sap.eta_r = saved_setting<double>(s, "sap-eta", dir);
    po.sap.gamma = saved_setting<double>(s, "sap-gamma", dir);
    po.sap.beta = saved_setting<double>(s, "sap-beta", dir);
  }
  o.schedule.rounds = saved_setting<int>(s, "iterations", dir);
  // Absent from states saved before input pruning existed: those runs had it off.
  po.prune_inputs = s.contains("prune-inputs") && saved_setting<bool>(s, "prune-inputs", dir);
  po.rails.input_keep = s.contains("keep-inputs") ? saved_setting<double>(s, "keep-inputs", dir) : 0.0;
  // Absent from states saved before the graph engine: block-inner groups, no shift fold.
  po.prune_residual = s.contains("prune-residual") && saved_setting<bool>(s, "prune-residual", dir);
  po.fold_shift = s.contains("fold-shift") && saved_setting<bool>(s, "fold-shift", dir);
  if (s.contains("groups")) po.only_groups = saved_setting<std::vector<std::string>>(s, "groups", dir);
  o.schedule.fine_tune.epochs = saved_setting<int>(s, "finetune-epochs", dir);
  o.schedule.fine_tune.lr = saved_setting<double>(s, "lr", dir);
  o.schedule.fine_tune.block_steps =
      s.contains("block-finetune-steps") ? saved_setting<std::int64_t>(s, "block-finetune-steps", dir) : 0;
  o.batch_size = saved_setting<std::int64_t>(s, "batch-size", dir);
  o.out = saved_setting<std::string>(s, "out", dir);
  o.json = saved_setting<bool>(s, "json", dir);
  o.keep_checkpoints = saved_setting<int>(s, "keep-checkpoints", dir);
  o.common.seed = saved_setting<std::uint64_t>(s, "seed", dir);
  o.common.threads = saved_setting<int>(s, "threads", dir);
  o.common.device = saved_setting<std::string>(s, "device", dir);
  shrink::tools::read_data_settings(o.images, s, dir, /*with_augment=*/true);
  SHRINK_CHECK(o.schedule.rounds >= 1 && o.schedule.fine_tune.epochs >= 0 && o.schedule.fine_tune.block_steps >= 0 &&
                   o.batch_size > 0 &&
                   o.schedule.calib_samples > 0 && o.keep_checkpoints >= 1 && o.common.threads >= 0 &&
                   std::isfinite(po.refit_ridge) && po.refit_ridge > 0 &&
                   o.common.threads <= 1024,
               "--resume ", dir, ": saved settings out of range: ", shrink::quote_json(s));
  return given;
}

nlohmann::json summary_json(const shrink::tools::ModelSummary& m) {
  return {{"accuracy", m.accuracy}, {"loss", m.loss}, {"params", m.params}, {"flops", m.flops},
          {"latency_ms", m.latency_ms}, {"latency_batch", m.latency_batch}};
}

shrink::tools::ModelSummary summary_from_json(const nlohmann::json& j) {
  shrink::tools::ModelSummary m;
  m.accuracy = j.at("accuracy").get<double>();
  m.loss = j.at("loss").get<double>();
  m.params = j.at("params").get<std::int64_t>();
  m.flops = j.at("flops").get<std::int64_t>();
  m.latency_ms = j.at("latency_ms").get<double>();
  m.latency_batch = j.at("latency_batch").get<std::int64_t>();
  return m;
}

// The last round's refit, per group: the consumer's calibration error against the dense
// output before and after it (empty without --refit).
nlohmann::json refit_json(const shrink::prune::ScheduleReport& report) {
  nlohmann::json groups = nlohmann::json::array();
  if (report.rounds.empty()) return groups;
  for (const auto& g : report.rounds.back().prune.groups)
    if (g.refit)
      groups.push_back({{"group", g.name}, {"mse_before", g.refit_error_before}, {"mse_after", g.refit_error_after}});
  return groups;
}

// Each group's width before the first round and after the last, in group order.
std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> group_widths(const shrink::prune::ScheduleReport& report) {
  std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> out;
  std::map<std::string, std::size_t> at;
  for (const auto& round : report.rounds)
    for (const auto& g : round.prune.groups) {
      if (!at.count(g.name)) {
        at[g.name] = out.size();
        out.emplace_back(g.name, g.before, g.after);
      }
      std::get<2>(out[at[g.name]]) = g.after;
    }
  return out;
}

nlohmann::json groups_json(const shrink::prune::ScheduleReport& report) {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& [name, before, after] : group_widths(report))
    groups.push_back({{"group", name}, {"before", before}, {"after", after}});
  return groups;
}

// How the pruned model stands against a --target-params / --target-flops target. Discrete
// widths land near a target, not on it (kSlack); a target below what the groups can reach
// (every group at its guard rail: one unit, --max-layer-ratio, --round-to; layers outside the
// groups, such as residual streams without --prune-residual, the stem and the classifier,
// keep their size) is pruned as far as it goes, and the report says so instead of passing
// it off as met.
struct TargetOutcome {
  std::string flag, what;  // "--target-params", "parameters"
  double asked = 0, reached = 0;
  bool met = true;
};

std::optional<TargetOutcome> target_outcome(const shrink::prune::PruneOptions& po,
                                            const shrink::tools::ModelSummary& before,
                                            const shrink::tools::ModelSummary& after) {
  using shrink::prune::TargetKind;
  if (po.target_kind != TargetKind::Params && po.target_kind != TargetKind::Flops) return std::nullopt;
  constexpr double kSlack = 1.05;
  const bool params = po.target_kind == TargetKind::Params;
  TargetOutcome t;
  t.flag = params ? "--target-params" : "--target-flops";
  t.what = params ? "parameters" : "FLOPs";
  t.asked = po.target;
  t.reached = params ? static_cast<double>(after.params) / static_cast<double>(before.params)
                     : static_cast<double>(after.flops) / static_cast<double>(before.flops);
  t.met = t.reached <= t.asked * kSlack + 1e-3;
  return t;
}

// What holds the groups at their widths, as far as this run's settings go: the one-unit floor,
// --round-to and --max-layer-ratio where given, the layers outside the groups; residual streams
// only where the model has them and --prune-residual is off.
std::string width_floors(const shrink::prune::PruneOptions& po, bool residual_streams_off) {
  std::string why = "each group keeps at least one unit";
  if (po.rails.multiple > 1)
    why += ", and a multiple of --round-to " + std::to_string(po.rails.multiple) + " (a group of " +
           std::to_string(po.rails.multiple) + " units or fewer keeps them all)";
  if (po.rails.max_layer_ratio < 1)
    why += ", and no more removed than --max-layer-ratio " + nlohmann::json(po.rails.max_layer_ratio).dump() + " allows";
  why += "; layers outside the groups keep their size";
  if (residual_streams_off) why += "; --prune-residual makes residual streams prunable too";
  return why;
}

void warn_unmet(const TargetOutcome& t, const shrink::prune::PruneOptions& po, bool residual_streams_off) {
  if (t.met) return;
  // Only a sampling method's widths are random; the others stop at the groups' floors.
  const std::string why =
      po.method == "pfp-sampling"
          ? "pfp-sampling keeps the channels it draws, and no draw of this seed landed nearer (another --seed "
            "draws again; --method pfp keeps widths exactly)"
          : "the nearest these groups allow (" + width_floors(po, residual_streams_off) + ")";
  std::fprintf(stderr, "shrink-prune: warning: %s %g not reached: the pruned model keeps %.4f of the dense model's %s: %s\n",
               t.flag.c_str(), t.asked, t.reached, t.what.c_str(), why.c_str());
}

void print_refit(const shrink::prune::ScheduleReport& report) {
  if (report.rounds.empty()) return;
  for (const auto& g : report.rounds.back().prune.groups)
    if (g.refit)
      std::printf("refit (beyond the seed papers): group %s's consumer, calibration MSE vs dense %.4g -> %.4g\n",
                  g.name.c_str(), g.refit_error_before, g.refit_error_after);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace shrink;
  Options o;
  prune::PruneOptions& po = o.schedule.prune;
  prune::FineTuneRecipe& recipe = o.schedule.fine_tune;
  std::string methods_help = "Pruning method (targets it accepts):";
  for (const prune::Method& m : prune::methods())
    methods_help += "\n  " + m.name + " (" + m.targets_text() + "): " + m.description;
  CLI::App app{"Prune a checkpoint to a target and write the smaller model.", "shrink-prune"};
  app.add_option("checkpoint", o.checkpoint, "Trained model (.safetensors); not with --resume");
  app.add_option("--method", po.method, methods_help)->capture_default_str();
  auto* keep = app.add_option("--keep", o.keep, "Fraction of each prunable layer's units kept (one target "
                              "is required, except for a method that decides its own counts (sap), which "
                              "rejects all three)")
                   ->check(tools::in_range(0.0, 1.0));
  auto* params = app.add_option("--target-params", o.target_params,
                                "Fraction of the dense model's parameters kept")->check(tools::in_range(0.0, 1.0));
  auto* flops = app.add_option("--target-flops", o.target_flops,
                               "Fraction of the dense model's FLOPs kept")->check(tools::in_range(0.0, 1.0));
  keep->excludes(params)->excludes(flops);
  params->excludes(flops);
  app.add_option("--data", o.data, "fashion-mnist, mnist, idx:DIR, cifar10, cifar10:DIR, or majority (generated token sequences)")->capture_default_str();
  tools::add_image_options(app, o.images);
  tools::add_augment_option(app, o.images);
  app.add_option("--calib-samples", o.schedule.calib_samples, "Training samples the criteria see")
      ->check(tools::positive())->capture_default_str();
  app.add_option("--allocation", o.allocation, "uniform, or global (score-based methods)")
      ->check(CLI::IsMember({"uniform", "global"}))->capture_default_str();
  app.add_option("--round-to", po.rails.multiple, "Round kept widths up to a multiple")
      ->check(tools::positive())->capture_default_str();
  app.add_option("--max-layer-ratio", po.rails.max_layer_ratio,
                 "At most this fraction of a layer's units removed")->check(tools::in_range(0.0, 1.0))->capture_default_str();
  app.add_option("--ispasp-iterations", po.ispasp_iterations)->check(tools::positive())->capture_default_str();
  auto* prune_inputs = app.add_flag("--prune-inputs", po.prune_inputs,
                                    "Also prune the model's input features (the first layer's input columns, "
                                    "PFP-style); the pruned model keeps taking whole samples: it records the "
                                    "features it kept and selects them itself");
  auto* keep_inputs = app.add_option("--keep-inputs", po.rails.input_keep,
                 "Fraction of the input features kept, instead of the target's (needs --prune-inputs; not "
                 "with sap, which decides its own counts)")
      ->check(tools::in_range(0.0, 1.0))->needs(prune_inputs);
  app.add_flag("--prune-residual", po.prune_residual,
               "Also prune residual streams: the channels a ResNet stage's convs write into their sum (every "
               "conv writing there, the projection shortcut, the BNs and every conv reading from it shrink "
               "together). Off: block-inner channels only, as the official i-SpaSP and PFP code do. A stream has "
               "several readers, beyond what the papers define: pfp scores a unit by its largest sensitivity over "
               "them, ispasp sums their residuals, --refit re-solves each");
  std::string only_groups;  // one word, split into po.only_groups
  app.add_option("--groups", only_groups,
                 "Prune only these groups (comma-separated names in one word, as --list-groups prints them; a "
                 "residual stream needs --prune-residual, the input group --prune-inputs); default: all")
      ->check(tools::name_list());
  bool list_groups = false;
  app.add_flag("--list-groups", list_groups,
               "Print the checkpoint's prunable groups (name, units, producers, consumers) and exit");
  app.add_flag("--fold-shift,!--no-fold-shift", po.fold_shift,
               "Fold what a removed unit still emits with its weights masked (its bias or BatchNorm shift, "
               "through the activation) into the next layer's bias or BatchNorm mean, so that the cut model "
               "computes what the weight-masked one does. Off by default: on trained BatchNorm networks the "
               "masked channel's constant ReLU(BN(0)) is far from what the channel carried, and dropping the "
               "channel outright keeps more accuracy")
      ->capture_default_str();
  app.add_flag("--refit", po.refit,
               "Beyond the seed papers (this project's own addition, off by default): after each cut, re-solve "
               "the consumer layer's weights and bias by ridge-regularised least squares on the calibration "
               "batch so that its output matches the dense model's (any structured method)");
  app.add_option("--refit-ridge", po.refit_ridge,
                 "The refit's regularisation toward the current weights, relative to the mean non-zero "
                 "eigenvalue of the activations' Gram matrix (larger keeps the weights nearer where they were)")
      ->check(tools::positive())->capture_default_str();
  app.add_flag("--recalibrate-bn", o.schedule.recalibrate_bn,
               "Beyond the seed papers (off by default): after each cut (and refit), re-estimate every "
               "BatchNorm's running mean and variance on the calibration batch, no weights changed (EagleEye's "
               "adaptive BatchNorm). The dense model's statistics are stale after a cut; "
               "docs/results/recalibrate_bn_*.md measures what re-estimating them recovers");
  // Structured SAP's hyperparameters (the paper's names; checked together by check_sap_options).
  const std::vector<CLI::Option*> sap_flags = {
      app.add_option("--sap-p", po.sap.p, "sap: PQ Index p (0 < p < q)")->capture_default_str(),
      app.add_option("--sap-q", po.sap.q, "sap: PQ Index q")->capture_default_str(),
      app.add_option("--sap-eta", po.sap.eta_r, "sap: eta_r, tolerance of the keep bound (>= 0)")->capture_default_str(),
      app.add_option("--sap-gamma", po.sap.gamma, "sap: gamma, scales the prune ratio 1 - r/d (> 0)")->capture_default_str(),
      app.add_option("--sap-beta", po.sap.beta, "sap: beta, the largest fraction of a layer's units removed "
                     "in one round, in (0, 1]")->capture_default_str()};
  app.add_option("--iterations", o.schedule.rounds, "Prune -> fine-tune rounds (1 to 1000), compounding to the "
                 "target: after round r of R the model has reached target^(r/R) (of each group's width it started "
                 "with, for --keep; of its parameters or FLOPs, for the others)")
      ->check(tools::in_range(1, 1000))->capture_default_str();
  app.add_option("--finetune-epochs", recipe.epochs, "Fine-tuning epochs after each round")
      ->check(tools::non_negative())->capture_default_str();
  app.add_option("--lr", recipe.lr, "Fine-tuning learning rate (SGD momentum 0.9, weight decay 5e-4, cosine, "
                 "label smoothing 0.1)")->check(tools::positive())->capture_default_str();
  app.add_option("--block-finetune-steps", recipe.block_steps,
                 "i-SpaSP's per-block fine-tune (the official code runs an epoch per block): after each group's "
                 "cut, this many SGD steps at --lr before the next group is chosen (score and select methods)")
      ->check(tools::non_negative())->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "Fine-tuning and evaluation batch size")
      ->check(tools::positive())->capture_default_str();
  app.add_option("--out", o.out, "Output checkpoint")->capture_default_str();
  app.add_flag("--json", o.json, "Print exactly one JSON object on stdout");
  auto* checkpoint_dir = app.add_option("--checkpoint-dir", o.checkpoint_dir,
                                        "Save the schedule's state here after every round, for --resume");
  app.add_option("--keep-checkpoints", o.keep_checkpoints, "Saved states kept (the newest)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--resume", o.resume, "Continue the schedule saved in this folder from its next round, "
                 "with its settings (--threads, --out, --json, --keep-checkpoints may be changed)")
      ->excludes(checkpoint_dir);
  tools::add_common_options(app, o.common);

  return tools::guarded_main(app, argc, argv, [&] {
    if (!only_groups.empty()) po.only_groups = split(only_groups, ',');
    std::array<bool, 3> given{keep->count() > 0, params->count() > 0, flops->count() > 0};
    nlohmann::json settings = settings_json(o, given[0], given[1], given[2]);
    std::optional<nn::LoadedRunState> resumed;
    if (!o.resume.empty()) {
      Generator loader_gen(0);  // the model's values come from the file; the stream is restored below
      resumed = tools::load_resume_state("shrink-prune", o.resume, loader_gen);
      settings = tools::resume_settings(app, settings, resumed->state.at("settings"), kOverridable, o.resume);
      given = apply_settings(o, settings, o.resume);
      o.checkpoint_dir = o.resume;
    }
    SHRINK_CHECK(!o.checkpoint.empty(), "shrink-prune: give the checkpoint to prune (or --resume DIR)");
    if (list_groups) {
      Generator loader(0);
      nn::Checkpoint ckpt = nn::load_checkpoint(o.checkpoint, loader);
      const auto groups = prune::build_groups(*ckpt.model, nn::input_shape(ckpt.spec),
                                              prune::GroupOptions{po.prune_inputs, po.prune_residual});
      if (groups.empty() && !o.json)
        std::fprintf(stderr, "shrink-prune: %s has no prunable group (no group of units lies between two layers "
                     "that declare their channels; sparse CSR layers do not)\n", o.checkpoint.c_str());
      if (o.json) {  // one object, as every --json output
        nlohmann::json list = nlohmann::json::array();
        for (const prune::Group& g : groups) {
          nlohmann::json consumers = nlohmann::json::array();
          for (const auto& r : g.reads) consumers.push_back(r.consumer);
          list.push_back({{"name", g.name}, {"units", g.size}, {"residual", g.residual}, {"input", g.is_input()},
                          {"producers", g.producers}, {"consumers", consumers}});
        }
        std::printf("%s\n", nlohmann::json{{"checkpoint", o.checkpoint}, {"groups", list}}.dump().c_str());
        return 0;
      }
      int name_width = 24;
      for (const prune::Group& g : groups) name_width = std::max(name_width, static_cast<int>(g.name.size()));
      for (const prune::Group& g : groups) {
        std::string consumers;
        for (const auto& r : g.reads) consumers += (consumers.empty() ? "" : ",") + r.consumer;
        std::string producers;
        for (const auto& p : g.producers) producers += (producers.empty() ? "" : ",") + p;
        std::printf("%-*s %6lld units  %s  produced by %s  read by %s\n", name_width, g.name.c_str(),
                    static_cast<long long>(g.size), g.residual ? "residual stream" : "chain          ",
                    producers.empty() ? "(the input)" : producers.c_str(), consumers.c_str());
      }
      return 0;
    }
    const Device device = tools::apply_common_options(o.common);
    tools::check_output_path(o.out, {o.checkpoint});
    if (!o.checkpoint_dir.empty()) tools::check_checkpoint_dir(o.checkpoint_dir);
    const int targets = static_cast<int>(given[0] + given[1] + given[2]);
    SHRINK_CHECK(targets <= 1, "shrink-prune: give one target: --keep, --target-params or --target-flops");
    po.target_kind = prune::TargetKind::None;
    if (given[0]) po.target_kind = prune::TargetKind::Keep, po.target = o.keep;
    if (given[1]) po.target_kind = prune::TargetKind::Params, po.target = o.target_params;
    if (given[2]) po.target_kind = prune::TargetKind::Flops, po.target = o.target_flops;
    if (po.target_kind != prune::TargetKind::None)
      SHRINK_CHECK(po.target > 0, "shrink-prune: ", given[0] ? "--keep" : given[1] ? "--target-params" : "--target-flops",
                   " must be above 0: a model with nothing kept computes nothing");
    po.allocation = prune::parse_allocation(o.allocation);
    SHRINK_CHECK(keep_inputs->count() == 0 || po.rails.input_keep > 0, "shrink-prune: --keep-inputs must be above 0");
    for (const CLI::Option* flag : sap_flags)
      SHRINK_CHECK(flag->count() == 0 || po.method == "sap", "shrink-prune: ", flag->get_name(),
                   " applies to --method sap only (the method is ", po.method, ")");
    if (po.method == "sap") prune::check_sap_options(po.sap, "--sap-");
    // The registry decides whether this method takes this target (sap takes none).
    prune::check_applicable(prune::find_method(po.method), po);
    o.schedule.seed = o.common.seed;
    Generator gen(o.common.seed);
    nn::Checkpoint ckpt = resumed ? resumed->checkpoint : nn::load_checkpoint(o.checkpoint, gen);
    // Sized as the checkpoint's training data was, unless told otherwise; the resolved
    // sizing is what the schedule saves (a resume repeats it).
    if (!resumed) tools::image_options_from_checkpoint(o.images, ckpt.metadata, o.checkpoint);
    tools::add_data_settings(settings, o.images, /*with_augment=*/true);
    const datasets::Dataset data = datasets::load_dataset(o.data, tools::image_options(o.images));
    tools::check_model_fits_data(ckpt.spec, data, o.checkpoint);
    nn::Module& model = *ckpt.model;
    model.to(device);
    const Shape sample = nn::input_shape(ckpt.spec);
    // The original model's figures: measured now, or (resumed) as the first run measured them.
    std::vector<std::int64_t> widths_before;
    tools::ModelSummary before;
    // The dense model as deployed, kept to time it in turns with the pruned one at the end
    // (tools::measure_latency_in_turns); a resumed run reports the latency its first run measured.
    std::shared_ptr<nn::Module> dense_probe;
    double prune_seconds_before = 0;
    if (resumed) {
      try {
        const nlohmann::json& st = resumed->state;
        gen = nn::generator_from_json(st.at("generator"), resumed->path + ": generator");
        o.schedule.first_round = st.at("round").get<int>() + 1;
        o.schedule.params_start = st.at("params_start").get<double>();
        o.schedule.flops_start = st.at("flops_start").get<double>();
        widths_before = st.at("widths_before").get<std::vector<std::int64_t>>();
        // Absent from states saved before it existed: keep fractions then compound from here.
        if (st.contains("group_widths_start"))
          o.schedule.widths_start = st.at("group_widths_start").get<prune::KeepCounts>();
        for (const auto& [name, width] : o.schedule.widths_start)
          SHRINK_CHECK(width >= 1 && width <= (std::int64_t{1} << 40), "--resume ", o.resume, ": ", resumed->path,
                       ": bad state (group '", name, "' started with ", width, " units)");
        before = summary_from_json(st.at("before"));
        prune_seconds_before = st.at("prune_seconds").get<double>();
      } catch (const nlohmann::json::exception& e) {
        fail("--resume ", o.resume, ": ", resumed->path, ": bad state (", e.what(), ")");
      }
      SHRINK_CHECK(o.schedule.first_round >= 2 && o.schedule.first_round <= o.schedule.rounds + 1, "--resume ",
                   o.resume, ": ", resumed->path, ": round ", o.schedule.first_round - 1, " does not fit a schedule of ",
                   o.schedule.rounds, " rounds");
      if (!o.json)
        std::fprintf(stderr, "shrink-prune: resuming after round %d of %d\n", o.schedule.first_round - 1,
                     o.schedule.rounds);
    } else {
      widths_before = nn::layer_widths(model);
      dense_probe = nn::inference_copy(model);
      // Timed at the end, in turns with the pruned model; now only where a saved state needs
      // the figure (a resumed run reports the latency its first run measured).
      before = tools::summarize(model, ckpt.spec, data, device, o.batch_size, /*accuracy=*/true,
                                /*latency=*/!dense_probe || !o.checkpoint_dir.empty());
      o.schedule.params_start = static_cast<double>(model.num_parameters());
      o.schedule.flops_start = static_cast<double>(nn::flops_per_sample(model, sample));
      o.schedule.widths_start = prune::start_widths(model, sample, po);
    }

    // Fine-tuning batches: one shuffled loader per round, seeded by round.
    std::unique_ptr<datasets::DataLoader> loader;
    int loader_round = 0;
    const prune::FineTuneData batches = [&](int round, int epoch) {
      if (!loader || loader_round != round) {
        loader = std::make_unique<datasets::DataLoader>(data.train, o.batch_size, true,
                                                        o.common.seed + 1000 * round);
        tools::augment_loader(*loader, o.images, data);
        loader_round = round;
      }
      loader->start_epoch(epoch);
      return prune::EpochBatches{tools::batches_of(*loader), loader->size()};
    };
    std::unique_ptr<tools::ProgressBar> bar;
    prune::ScheduleProgress progress;
    progress.pruned = [&](int round, const prune::PruneReport& r) {
      if (o.json) return;
      std::fprintf(stderr, "round %d/%d: %s in %.3fs:", round, o.schedule.rounds, po.method.c_str(), r.seconds);
      for (const auto& g : r.groups) std::fprintf(stderr, " %s %lld->%lld", g.name.c_str(),
                                                  static_cast<long long>(g.before), static_cast<long long>(g.after));
      std::fprintf(stderr, "\n");
    };
    progress.epoch_started = [&](int, int epoch, std::int64_t steps) {
      bar = std::make_unique<tools::ProgressBar>(
          "fine-tune " + std::to_string(epoch) + "/" + std::to_string(recipe.epochs), steps,
          !o.json && tools::stderr_is_terminal());
    };
    progress.step = [&](std::int64_t step, const nn::EpochResult& run) {
      bar->update(step, run.loss, run.accuracy, run.samples);
    };
    progress.epoch_finished = [&](int round, int epoch, const nn::EpochResult& r) {
      bar->finish();
      if (!o.json)
        std::fprintf(stderr, "round %d fine-tune epoch %d/%d: loss %.4f, train accuracy %.2f%%\n", round, epoch,
                     recipe.epochs, r.loss, r.accuracy * 100);
    };
    double prune_seconds_so_far = prune_seconds_before;
    progress.round_finished = [&](int round, const prune::ScheduleRound& r) {
      prune_seconds_so_far += r.prune.seconds;
      if (o.checkpoint_dir.empty()) return;
      const nlohmann::json state{{"settings", settings}, {"round", round}, {"generator", nn::generator_json(gen)},
                                 {"params_start", o.schedule.params_start}, {"flops_start", o.schedule.flops_start},
                                 {"widths_before", widths_before}, {"group_widths_start", o.schedule.widths_start},
                                 {"before", summary_json(before)},
                                 {"prune_seconds", prune_seconds_so_far}};
      const std::string path = nn::save_run_state(o.checkpoint_dir, round, model, {}, state, o.keep_checkpoints);
      if (!o.json) std::fprintf(stderr, "shrink-prune: saved %s (after round %d)\n", path.c_str(), round);
    };
    const prune::ScheduleReport report = prune::prune_schedule(model, data.train.images, data.train.labels, sample,
                                                               o.schedule, gen, device, batches, progress);
    const double prune_seconds = prune_seconds_before + report.prune_seconds;
    model.to(Device::cpu());
    const std::vector<std::int64_t> widths_after = nn::layer_widths(model);
    std::map<std::string, std::string> metadata = {
        {"data", data.name}, {"pruned_from", o.checkpoint}, {"method", po.method}};
    metadata.merge(tools::image_metadata(data.image));  // the pruned model takes the same inputs
    nn::save_checkpoint(o.out, model, metadata);
    model.to(device);
    tools::ModelSummary after =
        tools::summarize(model, ckpt.spec, data, device, o.batch_size, /*accuracy=*/true, /*latency=*/!dense_probe);
    if (dense_probe) tools::measure_latency_in_turns(*dense_probe, model, data, device, before, after);
    const std::optional<TargetOutcome> target = target_outcome(po, before, after);
    // Whether the model has residual streams this run left alone (the warnings point to them).
    const bool residual_streams_off =
        !po.prune_residual && std::ranges::any_of(prune::groups_if_taken(model, sample, prune::GroupOptions{false, true}),
                                                  [](const prune::Group& g) { return g.residual; });
    if (target) warn_unmet(*target, po, residual_streams_off);
    // A run that removed nothing says so (--round-to above a group's width, say) rather than
    // printing x1.000 as if that were what was asked.
    if (after.params == before.params && (po.target_kind == prune::TargetKind::None || po.target < 1))
      std::fprintf(stderr, "shrink-prune: warning: nothing was pruned: every group kept all its units (%s)\n",
                   po.method == "sap" ? "sap's PQ Index found every group dense enough to keep at these settings; "
                                        "a larger --sap-eta prunes more"
                                      : width_floors(po, residual_streams_off).c_str());

    if (o.json) {
      nlohmann::json target_json = nullptr;  // null: a method that decides its counts (sap)
      if (po.target_kind == prune::TargetKind::Keep)  // met by construction; the groups show the widths
        target_json = {{"flag", "--keep"}, {"asked", po.target}, {"reached", nullptr}, {"met", true}};
      if (target)
        target_json = {{"flag", target->flag}, {"asked", target->asked}, {"reached", target->reached},
                       {"met", target->met}};
      std::cout << nlohmann::json{{"method", po.method}, {"target", target_json},
                                  {"accuracy_before", before.accuracy}, {"accuracy_after", after.accuracy},
                                  {"loss_before", before.loss}, {"loss_after", after.loss},
                                  {"params_before", before.params}, {"params_after", after.params},
                                  {"flops_before", before.flops}, {"flops_after", after.flops},
                                  {"latency_ms_before", before.latency_ms}, {"latency_ms_after", after.latency_ms},
                                  {"latency_batch_size", before.latency_batch},
                                  {"widths_before", widths_before},
                                  {"widths_after", widths_after}, {"groups", groups_json(report)},
                                  {"prune_inputs", po.prune_inputs}, {"prune_residual", po.prune_residual},
                                  {"fold_shift", po.fold_shift},
                                  {"prune_seconds", prune_seconds}, {"iterations", o.schedule.rounds},
                                  {"refit", po.refit}, {"refit_ridge", po.refit_ridge},
                                  {"refit_groups", refit_json(report)},
                                  {"recalibrate_bn", o.schedule.recalibrate_bn},
                                  {"finetune_epochs", recipe.epochs}, {"out", o.out}}
                       .dump()
                << std::endl;
      return 0;
    }
    // The label column fits the longest group name (MobileNetV2's and ViT's run past 20).
    const auto widths = group_widths(report);
    int label = 14;
    for (const auto& [name, b, a] : widths) label = std::max(label, static_cast<int>(name.size()) + 2);
    auto row = [label](const char* what, const std::string& b, const std::string& a, const std::string& change) {
      std::printf("%-*s %22s %22s %12s\n", label, what, b.c_str(), a.c_str(), change.c_str());
    };
    auto num = [](double v, const char* fmt) { char buf[64]; std::snprintf(buf, sizeof buf, fmt, v); return std::string(buf); };
    std::printf("\n%s pruned by %s (%s data, %d round(s), %d fine-tune epoch(s) each)\n", o.checkpoint.c_str(),
                po.method.c_str(), data.name.c_str(), o.schedule.rounds, recipe.epochs);
    row("", "before", "after", "change");
    row("accuracy", num(before.accuracy * 100, "%.2f%%"), num(after.accuracy * 100, "%.2f%%"),
        num((after.accuracy - before.accuracy) * 100, "%+.2f pts"));
    row("parameters", std::to_string(before.params), std::to_string(after.params),
        num(static_cast<double>(after.params) / before.params, "x%.3f"));
    row("FLOPs/sample", std::to_string(before.flops), std::to_string(after.flops),
        num(static_cast<double>(after.flops) / before.flops, "x%.3f"));
    row("latency (ms)", num(before.latency_ms, "%.3f"), num(after.latency_ms, "%.3f"),
        num(before.latency_ms / after.latency_ms, "%.2fx faster"));
    // A chain's layer widths say it all; any other graph's groups are listed one per line.
    if (widths.size() + 1 == widths_before.size() - 1 || widths.empty())
      row("widths", nlohmann::json(widths_before).dump(), nlohmann::json(widths_after).dump(), "");
    else
      for (const auto& [name, b, a] : widths)
        row(("  " + name).c_str(), std::to_string(b), std::to_string(a),
            num(static_cast<double>(a) / static_cast<double>(b), "x%.3f"));
    if (target)
      std::printf("target %s %g: %s %.4f of the dense model's %s\n", target->flag.c_str(), target->asked,
                  target->met ? "met, kept" : "NOT reached, kept", target->reached, target->what.c_str());
    print_refit(report);
    if (o.schedule.recalibrate_bn && !report.rounds.empty())
      std::printf("recalibrated (beyond the seed papers): %lld BatchNorms' running statistics on the calibration "
                  "batch after each cut\n", static_cast<long long>(report.rounds.back().recalibrated_batch_norms));
    std::printf("pruning wall time %.3fs (without fine-tuning); latency: batch of %lld on %s\nsaved %s\n",
                prune_seconds, static_cast<long long>(before.latency_batch), device.str().c_str(), o.out.c_str());
    return 0;
  });
}
