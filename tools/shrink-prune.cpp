// shrink-prune: prunes a checkpoint to a target with one of the structured methods,
// optionally fine-tunes, and writes a smaller checkpoint; prints the before/after report.
#include <cmath>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "core/ops.h"
#include "core/random.h"
#include "datasets/registry.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "prune/pruner.h"
#include "tools/common/cli.h"
#include "tools/common/progress.h"
#include "tools/common/summary.h"

namespace {

struct Options {
  std::string checkpoint, data = "fashion-mnist", out = "pruned.safetensors";
  shrink::prune::PruneOptions prune;
  double keep = 0, target_params = 0, target_flops = 0;
  std::int64_t calib_samples = 1024, batch_size = 64;
  int finetune_epochs = 0, iterations = 1;
  double lr = 0.01;
  bool json = false;
  shrink::tools::CommonOptions common;
};

// Fraction kept per round so that `rounds` rounds compound to `total`.
double per_round(double total, int rounds) { return std::pow(total, 1.0 / rounds); }

shrink::prune::Calibration calibration(const shrink::datasets::Split& train, std::int64_t n,
                                       shrink::Generator& gen, shrink::Device device) {
  n = std::min(n, train.size());
  std::vector<std::int64_t> order(train.size());
  for (std::int64_t i = 0; i < train.size(); ++i) order[i] = i;
  for (std::int64_t i = 0; i < n; ++i)  // partial Fisher-Yates: a seeded random subset
    std::swap(order[i], order[i + gen.next_below(train.size() - i)]);
  order.resize(n);
  const shrink::Tensor idx = shrink::Tensor::from_vector(order, {n});
  return {shrink::index_select(train.images, 0, idx).to(device),
          shrink::index_select(train.labels, 0, idx).to(device)};
}

void fine_tune(shrink::nn::Module& model, const shrink::datasets::Dataset& data, const Options& o,
               shrink::Device device, int round) {
  using namespace shrink;
  nn::SGD optimizer(model.named_parameters(), o.lr, 0.9, 0.0, 5e-4);
  const auto schedule = nn::parse_schedule("cosine", o.finetune_epochs);
  datasets::DataLoader loader(data.train, o.batch_size, true, o.common.seed + 1000 * round);
  for (int epoch = 0; epoch < o.finetune_epochs; ++epoch) {
    optimizer.set_lr(schedule->lr_at(o.lr, epoch));
    loader.start_epoch(epoch);
    tools::ProgressBar bar("fine-tune " + std::to_string(epoch + 1) + "/" + std::to_string(o.finetune_epochs),
                           loader.size(), !o.json && tools::stderr_is_terminal());
    const nn::EpochResult r = nn::train_epoch(
        model, optimizer, tools::batches_of(loader), device, 0.1,
        [&](std::int64_t step, const nn::EpochResult& run) { bar.update(step, run.loss, run.accuracy, run.samples); });
    bar.finish();
    if (!o.json)
      std::fprintf(stderr, "round %d fine-tune epoch %d/%d: loss %.4f, train accuracy %.2f%%\n", round,
                   epoch + 1, o.finetune_epochs, r.loss, r.accuracy * 100);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace shrink;
  Options o;
  std::string methods_help = "Pruning method:";
  for (const auto& [name, what] : prune::method_names()) methods_help += "\n  " + name + ": " + what;
  CLI::App app{"Prune a checkpoint to a target and write the smaller model.", "shrink-prune"};
  app.add_option("checkpoint", o.checkpoint, "Trained model (.safetensors)")->required();
  app.add_option("--method", o.prune.method, methods_help)->capture_default_str();
  auto* keep = app.add_option("--keep", o.keep, "Fraction of each prunable layer's units kept")
                   ->check(CLI::Range(0.0, 1.0));
  auto* params = app.add_option("--target-params", o.target_params,
                                "Fraction of the dense model's parameters kept")->check(CLI::Range(0.0, 1.0));
  auto* flops = app.add_option("--target-flops", o.target_flops,
                               "Fraction of the dense model's FLOPs kept")->check(CLI::Range(0.0, 1.0));
  keep->excludes(params)->excludes(flops);
  params->excludes(flops);
  app.add_option("--data", o.data, "fashion-mnist, mnist, or idx:DIR")->capture_default_str();
  app.add_option("--calib-samples", o.calib_samples, "Training samples the criteria see")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--allocation", o.prune.allocation, "uniform, or global (score-based methods)")
      ->check(CLI::IsMember({"uniform", "global"}))->capture_default_str();
  app.add_option("--round-to", o.prune.rails.multiple, "Round kept widths up to a multiple")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-layer-ratio", o.prune.rails.max_layer_ratio,
                 "At most this fraction of a layer's units removed")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app.add_option("--ispasp-iterations", o.prune.ispasp_iterations)->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--iterations", o.iterations, "Prune -> fine-tune rounds; each round keeps the same "
                 "fraction of what is left, compounding to the target")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--finetune-epochs", o.finetune_epochs, "Fine-tuning epochs after each round")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--lr", o.lr, "Fine-tuning learning rate (SGD, cosine)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch-size", o.batch_size, "Fine-tuning and evaluation batch size")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--out", o.out, "Output checkpoint")->capture_default_str();
  app.add_flag("--json", o.json, "Print exactly one JSON object on stdout");
  tools::add_common_options(app, o.common);

  return tools::guarded_main(app, argc, argv, [&] {
    const Device device = tools::apply_common_options(o.common);
    SHRINK_CHECK(keep->count() + params->count() + flops->count() == 1 || o.prune.method == "sap",
                 "shrink-prune: give one target: --keep, --target-params or --target-flops");
    double total = 1.0;
    if (keep->count()) o.prune.target_kind = prune::TargetKind::Keep, total = o.keep;
    if (params->count()) o.prune.target_kind = prune::TargetKind::Params, total = o.target_params;
    if (flops->count()) o.prune.target_kind = prune::TargetKind::Flops, total = o.target_flops;
    SHRINK_CHECK(total > 0, "shrink-prune: the target must be above 0");
    Generator gen(o.common.seed);
    nn::Checkpoint ckpt = nn::load_checkpoint(o.checkpoint, gen);
    const datasets::Dataset data = datasets::load_dataset(o.data);
    nn::Module& model = *ckpt.model;
    model.to(device);
    const Shape sample = nn::input_shape(ckpt.spec);
    const std::vector<std::int64_t> widths_before = nn::layer_widths(model);
    const tools::ModelSummary before = tools::summarize(model, ckpt.spec, data, device, o.batch_size);

    double prune_seconds = 0;
    const std::int64_t params_dense = before.params, flops_dense = before.flops;
    for (int round = 1; round <= o.iterations; ++round) {
      // Params and FLOPs targets are fractions of the dense model: convert to this round's
      // fraction of the current one so the rounds land on the overall target.
      o.prune.target = per_round(total, o.iterations);
      if (o.prune.target_kind != prune::TargetKind::Keep) {
        const double goal = std::pow(total, static_cast<double>(round) / o.iterations);
        const double now = o.prune.target_kind == prune::TargetKind::Params
                               ? static_cast<double>(model.num_parameters()) / params_dense
                               : static_cast<double>(nn::flops_per_sample(model, sample)) / flops_dense;
        o.prune.target = std::min(1.0, goal / now);
      }
      o.prune.seed = o.common.seed + round;
      const prune::Calibration calib = calibration(data.train, o.calib_samples, gen, device);
      const prune::PruneReport r = prune::prune_model(model, calib, o.prune, sample);
      prune_seconds += r.seconds;
      if (!o.json) {
        std::fprintf(stderr, "round %d/%d: %s in %.3fs:", round, o.iterations, o.prune.method.c_str(), r.seconds);
        for (const auto& g : r.groups) std::fprintf(stderr, " %s %lld->%lld", g.name.c_str(),
                                                    static_cast<long long>(g.before), static_cast<long long>(g.after));
        std::fprintf(stderr, "\n");
      }
      if (o.finetune_epochs > 0) fine_tune(model, data, o, device, round);
    }
    model.to(Device::cpu());
    const std::vector<std::int64_t> widths_after = nn::layer_widths(model);
    nn::save_checkpoint(o.out, model,
                        {{"data", data.name}, {"pruned_from", o.checkpoint}, {"method", o.prune.method}});
    model.to(device);
    const tools::ModelSummary after = tools::summarize(model, ckpt.spec, data, device, o.batch_size);

    if (o.json) {
      std::cout << nlohmann::json{{"method", o.prune.method},
                                  {"accuracy_before", before.accuracy}, {"accuracy_after", after.accuracy},
                                  {"loss_before", before.loss}, {"loss_after", after.loss},
                                  {"params_before", before.params}, {"params_after", after.params},
                                  {"flops_before", before.flops}, {"flops_after", after.flops},
                                  {"latency_ms_before", before.latency_ms}, {"latency_ms_after", after.latency_ms},
                                  {"latency_batch_size", before.latency_batch},
                                  {"widths_before", widths_before},
                                  {"widths_after", widths_after},
                                  {"prune_seconds", prune_seconds}, {"iterations", o.iterations},
                                  {"finetune_epochs", o.finetune_epochs}, {"out", o.out}}
                       .dump()
                << std::endl;
      return 0;
    }
    auto row = [](const char* what, const std::string& b, const std::string& a, const std::string& change) {
      std::printf("%-14s %22s %22s %12s\n", what, b.c_str(), a.c_str(), change.c_str());
    };
    auto num = [](double v, const char* fmt) { char buf[64]; std::snprintf(buf, sizeof buf, fmt, v); return std::string(buf); };
    std::printf("\n%s pruned by %s (%s data, %d round(s), %d fine-tune epoch(s) each)\n", o.checkpoint.c_str(),
                o.prune.method.c_str(), data.name.c_str(), o.iterations, o.finetune_epochs);
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
