// shrink-prune: prunes a checkpoint to a target with one of the structured methods,
// optionally fine-tunes, and writes a smaller checkpoint; prints the before/after report.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "datasets/registry.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "prune/methods.h"
#include "prune/schedule.h"
#include "tools/common/cli.h"
#include "tools/common/validators.h"
#include "tools/common/progress.h"
#include "tools/common/summary.h"

namespace {

struct Options {
  std::string checkpoint, data = "fashion-mnist", out = "pruned.safetensors", allocation = "uniform";
  shrink::prune::ScheduleOptions schedule;
  double keep = 0, target_params = 0, target_flops = 0;
  std::int64_t batch_size = 64;
  bool json = false;
  shrink::tools::CommonOptions common;
};

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
  app.add_option("checkpoint", o.checkpoint, "Trained model (.safetensors)")->required();
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
  app.add_option("--data", o.data, "fashion-mnist, mnist, or idx:DIR")->capture_default_str();
  app.add_option("--calib-samples", o.schedule.calib_samples, "Training samples the criteria see")
      ->check(tools::positive())->capture_default_str();
  app.add_option("--allocation", o.allocation, "uniform, or global (score-based methods)")
      ->check(CLI::IsMember({"uniform", "global"}))->capture_default_str();
  app.add_option("--round-to", po.rails.multiple, "Round kept widths up to a multiple")
      ->check(tools::positive())->capture_default_str();
  app.add_option("--max-layer-ratio", po.rails.max_layer_ratio,
                 "At most this fraction of a layer's units removed")->check(tools::in_range(0.0, 1.0))->capture_default_str();
  app.add_option("--ispasp-iterations", po.ispasp_iterations)->check(tools::positive())->capture_default_str();
  app.add_option("--iterations", o.schedule.rounds, "Prune -> fine-tune rounds; each round keeps the same "
                 "fraction of what is left, compounding to the target")->check(tools::positive())->capture_default_str();
  app.add_option("--finetune-epochs", recipe.epochs, "Fine-tuning epochs after each round")
      ->check(tools::non_negative())->capture_default_str();
  app.add_option("--lr", recipe.lr, "Fine-tuning learning rate (SGD momentum 0.9, weight decay 5e-4, cosine, "
                 "label smoothing 0.1)")->check(tools::positive())->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "Fine-tuning and evaluation batch size")
      ->check(tools::positive())->capture_default_str();
  app.add_option("--out", o.out, "Output checkpoint")->capture_default_str();
  app.add_flag("--json", o.json, "Print exactly one JSON object on stdout");
  tools::add_common_options(app, o.common);

  return tools::guarded_main(app, argc, argv, [&] {
    const Device device = tools::apply_common_options(o.common);
    tools::check_output_path(o.out, {o.checkpoint});
    const int targets = static_cast<int>(keep->count() + params->count() + flops->count());
    SHRINK_CHECK(targets <= 1, "shrink-prune: give one target: --keep, --target-params or --target-flops");
    po.target_kind = prune::TargetKind::None;
    if (keep->count()) po.target_kind = prune::TargetKind::Keep, po.target = o.keep;
    if (params->count()) po.target_kind = prune::TargetKind::Params, po.target = o.target_params;
    if (flops->count()) po.target_kind = prune::TargetKind::Flops, po.target = o.target_flops;
    if (po.target_kind != prune::TargetKind::None)
      SHRINK_CHECK(po.target > 0, "shrink-prune: the target must be above 0");
    po.allocation = prune::parse_allocation(o.allocation);
    // The registry decides whether this method takes this target (sap takes none).
    prune::check_applicable(prune::find_method(po.method), po);
    o.schedule.seed = o.common.seed;
    Generator gen(o.common.seed);
    nn::Checkpoint ckpt = nn::load_checkpoint(o.checkpoint, gen);
    const datasets::Dataset data = datasets::load_dataset(o.data);
    nn::Module& model = *ckpt.model;
    model.to(device);
    const Shape sample = nn::input_shape(ckpt.spec);
    const std::vector<std::int64_t> widths_before = nn::layer_widths(model);
    const tools::ModelSummary before = tools::summarize(model, ckpt.spec, data, device, o.batch_size);

    // Fine-tuning batches: one shuffled loader per round, seeded by round.
    std::unique_ptr<datasets::DataLoader> loader;
    int loader_round = 0;
    const prune::FineTuneData batches = [&](int round, int epoch) {
      if (!loader || loader_round != round) {
        loader = std::make_unique<datasets::DataLoader>(data.train, o.batch_size, true,
                                                        o.common.seed + 1000 * round);
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
    const prune::ScheduleReport report = prune::prune_schedule(model, data.train.images, data.train.labels, sample,
                                                               o.schedule, gen, device, batches, progress);
    const double prune_seconds = report.prune_seconds;
    model.to(Device::cpu());
    const std::vector<std::int64_t> widths_after = nn::layer_widths(model);
    nn::save_checkpoint(o.out, model,
                        {{"data", data.name}, {"pruned_from", o.checkpoint}, {"method", po.method}});
    model.to(device);
    const tools::ModelSummary after = tools::summarize(model, ckpt.spec, data, device, o.batch_size);

    if (o.json) {
      std::cout << nlohmann::json{{"method", po.method},
                                  {"accuracy_before", before.accuracy}, {"accuracy_after", after.accuracy},
                                  {"loss_before", before.loss}, {"loss_after", after.loss},
                                  {"params_before", before.params}, {"params_after", after.params},
                                  {"flops_before", before.flops}, {"flops_after", after.flops},
                                  {"latency_ms_before", before.latency_ms}, {"latency_ms_after", after.latency_ms},
                                  {"latency_batch_size", before.latency_batch},
                                  {"widths_before", widths_before},
                                  {"widths_after", widths_after},
                                  {"prune_seconds", prune_seconds}, {"iterations", o.schedule.rounds},
                                  {"finetune_epochs", recipe.epochs}, {"out", o.out}}
                       .dump()
                << std::endl;
      return 0;
    }
    auto row = [](const char* what, const std::string& b, const std::string& a, const std::string& change) {
      std::printf("%-14s %22s %22s %12s\n", what, b.c_str(), a.c_str(), change.c_str());
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
    row("widths", nlohmann::json(widths_before).dump(), nlohmann::json(widths_after).dump(), "");
    std::printf("pruning wall time %.3fs (without fine-tuning); latency: batch of %lld on %s\nsaved %s\n",
                prune_seconds, static_cast<long long>(before.latency_batch), device.str().c_str(), o.out.c_str());
    return 0;
  });
}
