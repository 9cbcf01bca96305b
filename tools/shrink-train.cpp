// shrink-train: trains a model (a named architecture or an existing checkpoint, pruned or
// not) on a data set and writes a checkpoint; one JSON line per epoch to --metrics.
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "datasets/registry.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "tools/common/cli.h"
#include "tools/common/validators.h"
#include "tools/common/progress.h"

namespace {

struct Options {
  std::string model = "lenet-300-100";
  double dropout = 0;  // after each hidden activation of an mlp-family model; 0: none
  std::string data = "fashion-mnist";
  int epochs = 10;
  // Defaults reach >= 89% on Fashion-MNIST (lenet-300-100, ffn-10000) and >= 95% on the
  // MNIST subset in 10 epochs; docs/results come from scripts that use them.
  std::int64_t batch_size = 64;
  double lr = 0.05;
  std::string optimizer = "sgd";
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 5e-4;
  double label_smoothing = 0.1;
  std::string schedule = "cosine";
  std::string out = "model.safetensors";
  std::string metrics;
  int nonfinite_retries = 0;
  double nonfinite_lr_factor = 0.5;
  shrink::tools::CommonOptions common;
};

std::unique_ptr<shrink::nn::Optimizer> make_optimizer(const Options& o, shrink::nn::Module& m) {
  if (o.optimizer == "sgd")
    return std::make_unique<shrink::nn::SGD>(m.named_parameters(), o.lr, o.momentum, 0.0,
                                             o.weight_decay, o.nesterov);
  return std::make_unique<shrink::nn::AdamW>(m.named_parameters(), o.lr, 0.9, 0.999, 1e-8,
                                             o.weight_decay);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace shrink;
  Options o;
  CLI::App app{"Train a model on a data set and save a checkpoint.", "shrink-train"};
  app.add_option("--model", o.model,
                 "lenet-300-100, ffn-10000, mlp:784-300-100-10, or a .safetensors checkpoint "
                 "to continue training (e.g. a pruned model)")->capture_default_str();
  auto* dropout = app.add_option("--dropout", o.dropout, "Dropout probability after each hidden "
                                 "activation of an mlp-family model (a new model, not a checkpoint)");
  app.add_option("--data", o.data, "fashion-mnist, mnist, or idx:DIR")->capture_default_str();
  app.add_option("--epochs", o.epochs)->check(tools::non_negative())->capture_default_str();
  app.add_option("--batch-size", o.batch_size)->check(tools::positive())->capture_default_str();
  app.add_option("--lr", o.lr, "Base learning rate")->check(tools::positive())->capture_default_str();
  app.add_option("--optimizer", o.optimizer)->check(CLI::IsMember({"sgd", "adamw"}))->capture_default_str();
  app.add_option("--momentum", o.momentum, "SGD momentum")->check(tools::in_range(0.0, 1.0))->capture_default_str();
  app.add_flag("--nesterov", o.nesterov, "Nesterov momentum (SGD)");
  app.add_option("--weight-decay", o.weight_decay)->check(tools::non_negative())->capture_default_str();
  app.add_option("--label-smoothing", o.label_smoothing)->check(tools::in_range(0.0, 1.0))->capture_default_str();
  app.add_option("--schedule", o.schedule,
                 "Per-epoch LR schedule: constant | step:S[:G] | multistep:M1,M2[:G] | "
                 "cosine[:T[:MIN]] | warmup:W[+SCHEDULE]")->capture_default_str();
  app.add_option("--out", o.out, "Output checkpoint (.safetensors)")->capture_default_str();
  app.add_option("--metrics", o.metrics, "Append one JSON line per epoch to this file");
  app.add_option("--nonfinite-retries", o.nonfinite_retries,
                 "A NaN/Inf loss or gradient stops training, naming the step and tensor; with N > 0 "
                 "such a step is skipped and the learning rate lowered instead, at most N times")
      ->check(tools::in_range(0, 1000000))->capture_default_str();
  app.add_option("--nonfinite-lr-factor", o.nonfinite_lr_factor,
                 "Learning-rate multiplier applied at each skipped step")
      ->check(tools::in_range(1e-6, 0.999999))->capture_default_str();
  tools::add_common_options(app, o.common);

  return tools::guarded_main(app, argc, argv, [&] {
    const Device device = tools::apply_common_options(o.common);
    tools::check_output_path(o.out, {});  // continuing a checkpoint in place is allowed (atomic write)
    Generator gen(o.common.seed);
    const auto schedule = nn::parse_schedule(o.schedule, std::max(o.epochs, 1));  // --epochs 0 saves the init
    const datasets::Dataset data = datasets::load_dataset(o.data);

    SHRINK_CHECK(o.dropout >= 0 && o.dropout < 1, "--dropout: P must be in [0, 1), got ", o.dropout);
    std::shared_ptr<nn::Module> model;
    if (std::filesystem::is_regular_file(o.model)) {
      SHRINK_CHECK(!dropout->count(), "--dropout applies to a model built from its name, not to the "
                   "checkpoint ", o.model, " (which keeps the layers it was saved with)");
      model = nn::load_checkpoint(o.model, gen).model;
    } else {
      nlohmann::json spec = nn::parse_model_text(o.model);
      if (dropout->count()) spec["dropout"] = o.dropout;
      model = nn::build_from_spec(spec, gen);
    }
    model->to(device);
    auto optimizer = make_optimizer(o, *model);
    std::ofstream metrics;
    if (!o.metrics.empty()) {
      metrics.open(o.metrics, std::ios::app);
      SHRINK_CHECK(metrics.good(), "--metrics: cannot open ", o.metrics, " for writing");
    }

    datasets::DataLoader train_loader(data.train, o.batch_size, true, o.common.seed);
    datasets::DataLoader test_loader(data.test, 1000, false, o.common.seed);
    std::cerr << "shrink-train: " << o.model << " (" << tools::format_count(model->num_parameters())
              << " params) on " << data.name << " (" << data.train.size() << " train / "
              << data.test.size() << " test), " << device.str() << "\n";
    const bool live = tools::stderr_is_terminal();
    nn::NonFiniteGuard guard;
    guard.retries = o.nonfinite_retries;
    guard.lr_factor = o.nonfinite_lr_factor;
    guard.on_skip = [&](const std::string& message) {
      std::cerr << "\nshrink-train: warning: " << message << "\n";
    };
    nn::EpochResult train, test;
    for (int epoch = 0; epoch < o.epochs; ++epoch) {
      const double lr = schedule->lr_at(o.lr, epoch) * guard.lr_scale;
      optimizer->set_lr(lr);
      train_loader.start_epoch(epoch);
      tools::ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
                             train_loader.size(), live);
      try {
        train = nn::train_epoch(*model, *optimizer, tools::batches_of(train_loader), device,
                                o.label_smoothing, [&](std::int64_t step, const nn::EpochResult& r) {
                                  bar.update(step, r.loss, r.accuracy, r.samples);
                                }, &guard);
      } catch (const nn::NonFiniteError& e) {
        bar.finish();
        fail("epoch ", epoch + 1, ", ", e.what(), "; ", o.out, " was not written");
      }
      bar.finish();
      test_loader.start_epoch(0);
      test = nn::evaluate(*model, tools::batches_of(test_loader), device);
      std::printf("epoch %d/%d  lr %.5f  train loss %.4f acc %.2f%%  test loss %.4f acc %.2f%%  "
                  "%.1fs (%s samples/s)\n",
                  epoch + 1, o.epochs, lr, train.loss, train.accuracy * 100, test.loss,
                  test.accuracy * 100, train.seconds,
                  tools::format_count(train.samples_per_second()).c_str());
      std::fflush(stdout);
      if (metrics.is_open()) {
        metrics << nlohmann::json{{"epoch", epoch + 1},
                                  {"train_loss", train.loss},
                                  {"train_accuracy", train.accuracy},
                                  {"test_loss", test.loss},
                                  {"test_accuracy", test.accuracy},
                                  {"lr", lr},
                                  {"seconds", train.seconds},
                                  {"samples_per_second", train.samples_per_second()}}
                       .dump()
                << "\n";
        metrics.flush();
        SHRINK_CHECK(metrics.good(), "--metrics: writing ", o.metrics, " failed (disk full?)");
      }
    }
    if (o.epochs == 0) {  // the initial weights (e.g. for lottery-ticket rewinding): still report them
      test_loader.start_epoch(0);
      test = nn::evaluate(*model, tools::batches_of(test_loader), device);
    }
    model->to(Device::cpu());
    nn::save_checkpoint(o.out, *model,
                        {{"data", data.name},
                         {"epochs", std::to_string(o.epochs)},
                         {"seed", std::to_string(o.common.seed)},
                         {"test_accuracy", std::to_string(test.accuracy)}});
    std::printf("saved %s (test accuracy %.2f%%)\n", o.out.c_str(), test.accuracy * 100);
    return 0;
  });
}
