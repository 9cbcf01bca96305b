// shrink-train: trains a model (a named architecture or an existing checkpoint, pruned or
// not) on a data set and writes a checkpoint; one JSON line per epoch to --metrics.
// With --checkpoint-dir the run's whole state is kept there (nn/run_state.h) every epoch or
// every N steps, and --resume DIR continues it to the weights an uninterrupted run reaches.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "core/outside_json.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "datasets/registry.h"
#include "datasets/subset.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/run_state.h"
#include "nn/schedule.h"
#include "nn/train_state.h"
#include "tools/common/cli.h"
#include "tools/common/data_options.h"
#include "tools/common/model_for_data.h"
#include "tools/common/validators.h"
#include "tools/common/progress.h"
#include "tools/common/resume.h"

namespace {

struct Options {
  std::string model = "lenet-300-100";
  double dropout = 0;  // after each hidden activation of an mlp-family model; 0: none
  std::string data = "fashion-mnist";
  int epochs = 10;
  std::int64_t train_samples = 0;  // a fixed random subset of the training split; 0: all of it
  // Defaults reach >= 89% on Fashion-MNIST (lenet-300-100, ffn-10000) and >= 95% on the
  // MNIST subset in 10 epochs; docs/results come from scripts that use them.
  std::int64_t batch_size = 64;
  double lr = 0.05;
  std::string optimizer = "sgd";
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 5e-4;
  bool no_decay_norm_bias = false;  // exclude 1-d parameters (biases, norm scales/shifts) from decay
  double label_smoothing = 0.1;
  std::string schedule = "cosine";
  std::string out = "model.safetensors";
  std::string metrics;
  int nonfinite_retries = 0;
  double nonfinite_lr_factor = 0.5;
  std::string checkpoint_dir;
  std::int64_t checkpoint_every = 0;  // steps; 0: at the end of every epoch
  int keep_checkpoints = 2;
  std::string resume;
  shrink::tools::DataOptions images;  // --input-size, --channels, --augment
  shrink::tools::CommonOptions common;
};

// The run's settings, keyed by flag (tools/common/resume.h). "dropout" is null when the
// flag was not given (a checkpoint's own layers, or none).
nlohmann::json settings_json(const Options& o, bool dropout_given) {
  nlohmann::json settings = {{"model", o.model}, {"dropout", dropout_given ? nlohmann::json(o.dropout) : nlohmann::json()},
          {"data", o.data}, {"epochs", o.epochs}, {"train-samples", o.train_samples},
          {"batch-size", o.batch_size}, {"lr", o.lr},
          {"optimizer", o.optimizer}, {"momentum", o.momentum}, {"nesterov", o.nesterov},
          {"weight-decay", o.weight_decay}, {"no-decay-norm-bias", o.no_decay_norm_bias},
          {"label-smoothing", o.label_smoothing},
          {"schedule", o.schedule}, {"out", o.out}, {"metrics", o.metrics},
          {"checkpoint-every", o.checkpoint_every}, {"keep-checkpoints", o.keep_checkpoints},
          {"nonfinite-retries", o.nonfinite_retries}, {"nonfinite-lr-factor", o.nonfinite_lr_factor},
          {"seed", o.common.seed}, {"threads", o.common.threads}, {"device", o.common.device}};
  shrink::tools::add_data_settings(settings, o.images, /*with_augment=*/true);
  return settings;
}

// Settings that cannot change the weights a run reaches, so a resumed run may change them.
// --threads can change the rounding of threaded reductions: the same count reproduces the
// weights bit for bit. The non-finite policy only acts on a fault: resuming a run that
// stopped on one with --nonfinite-retries is what that flag is for.
const std::set<std::string> kOverridable = {"threads", "out", "metrics", "checkpoint-every",
                                            "keep-checkpoints", "nonfinite-retries",
                                            "nonfinite-lr-factor"};

void apply_settings(Options& o, const nlohmann::json& s, const std::string& dir) {
  using shrink::tools::saved_setting;
  o.model = saved_setting<std::string>(s, "model", dir);
  o.data = saved_setting<std::string>(s, "data", dir);
  o.epochs = saved_setting<int>(s, "epochs", dir);
  // Runs saved before the flag existed trained on the whole split.
  o.train_samples = s.contains("train-samples") ? saved_setting<std::int64_t>(s, "train-samples", dir) : 0;
  o.batch_size = saved_setting<std::int64_t>(s, "batch-size", dir);
  o.lr = saved_setting<double>(s, "lr", dir);
  o.optimizer = saved_setting<std::string>(s, "optimizer", dir);
  o.momentum = saved_setting<double>(s, "momentum", dir);
  o.nesterov = saved_setting<bool>(s, "nesterov", dir);
  o.weight_decay = saved_setting<double>(s, "weight-decay", dir);
  // Runs saved before the flag existed decayed every parameter.
  o.no_decay_norm_bias = s.contains("no-decay-norm-bias") && saved_setting<bool>(s, "no-decay-norm-bias", dir);
  o.label_smoothing = saved_setting<double>(s, "label-smoothing", dir);
  o.schedule = saved_setting<std::string>(s, "schedule", dir);
  o.out = saved_setting<std::string>(s, "out", dir);
  o.metrics = saved_setting<std::string>(s, "metrics", dir);
  o.checkpoint_every = saved_setting<std::int64_t>(s, "checkpoint-every", dir);
  o.keep_checkpoints = saved_setting<int>(s, "keep-checkpoints", dir);
  o.nonfinite_retries = saved_setting<int>(s, "nonfinite-retries", dir);
  o.nonfinite_lr_factor = saved_setting<double>(s, "nonfinite-lr-factor", dir);
  o.common.seed = saved_setting<std::uint64_t>(s, "seed", dir);
  o.common.threads = saved_setting<int>(s, "threads", dir);
  o.common.device = saved_setting<std::string>(s, "device", dir);
  shrink::tools::read_data_settings(o.images, s, dir, /*with_augment=*/true);
  SHRINK_CHECK(o.epochs >= 0 && o.train_samples >= 0 && o.batch_size > 0 && o.keep_checkpoints >= 1 &&
                   o.checkpoint_every >= 0 && o.common.threads >= 0 && o.common.threads <= 1024 &&
                   o.nonfinite_retries >= 0 && o.nonfinite_lr_factor > 0 && o.nonfinite_lr_factor < 1,
               "--resume ", dir, ": saved settings out of range: ", shrink::quote_json(s));
}

std::unique_ptr<shrink::nn::Optimizer> make_optimizer(const Options& o, shrink::nn::Module& m) {
  std::unique_ptr<shrink::nn::Optimizer> opt;
  if (o.optimizer == "sgd")
    opt = std::make_unique<shrink::nn::SGD>(m.named_parameters(), o.lr, o.momentum, 0.0,
                                            o.weight_decay, o.nesterov);
  else
    opt = std::make_unique<shrink::nn::AdamW>(m.named_parameters(), o.lr, 0.9, 0.999, 1e-8,
                                              o.weight_decay);
  if (o.no_decay_norm_bias) {
    std::set<std::string> one_dimensional;  // biases and BatchNorm's weight and bias
    for (const auto& [name, p] : m.named_parameters())
      if (p.dim() <= 1) one_dimensional.insert(name);
    opt->exclude_from_weight_decay(one_dimensional);
  }
  return opt;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace shrink;
  Options o;
  CLI::App app{"Train a model on a data set and save a checkpoint.", "shrink-train"};
  app.add_option("--model", o.model,
                 "lenet-300-100, ffn-10000, mlp:784-300-100-10, lenet5, resnet20/32/44/56/110, "
                 "resnet18/34/50, mobilenetv2, vit-tiny (options as NAME:KEY=VALUE,..., e.g. "
                 "resnet18:small_input=true), or a .safetensors checkpoint to continue training "
                 "(e.g. a pruned model); an image model takes its input shape and classes from --data")
      ->capture_default_str();
  auto* dropout = app.add_option("--dropout", o.dropout, "Dropout probability after each hidden "
                                 "activation of an mlp-family model (a new model, not a checkpoint)");
  app.add_option("--data", o.data, "fashion-mnist, mnist, idx:DIR, cifar10, cifar10:DIR, or majority (generated token sequences)")->capture_default_str();
  tools::add_image_options(app, o.images);
  tools::add_augment_option(app, o.images);
  app.add_option("--epochs", o.epochs)->check(tools::non_negative())->capture_default_str();
  app.add_option("--train-samples", o.train_samples,
                 "Train on a fixed random subset of this many training samples (the same for the same "
                 "--seed), e.g. for a short fine-tune; 0: the whole training split. Evaluation uses the "
                 "whole test split")
      ->check(tools::non_negative())->capture_default_str();
  app.add_option("--batch-size", o.batch_size)->check(tools::positive())->capture_default_str();
  app.add_option("--lr", o.lr, "Base learning rate")->check(tools::positive())->capture_default_str();
  app.add_option("--optimizer", o.optimizer)->check(CLI::IsMember({"sgd", "adamw"}))->capture_default_str();
  app.add_option("--momentum", o.momentum, "SGD momentum")->check(tools::in_range(0.0, 1.0))->capture_default_str();
  app.add_flag("--nesterov", o.nesterov, "Nesterov momentum (SGD)");
  app.add_option("--weight-decay", o.weight_decay)->check(tools::non_negative())->capture_default_str();
  app.add_flag("--no-decay-norm-bias", o.no_decay_norm_bias,
               "No weight decay on 1-d parameters: biases and BatchNorm's weight and bias");
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
  auto* checkpoint_dir = app.add_option(
      "--checkpoint-dir", o.checkpoint_dir,
      "Keep the run's state in this folder (model, optimizer, schedule position, random "
      "streams, loader position, settings) so that --resume can continue it");
  app.add_option("--checkpoint-every", o.checkpoint_every,
                 "Save the state every N steps (0: at the end of every epoch)")
      ->check(tools::non_negative())->capture_default_str();
  app.add_option("--keep-checkpoints", o.keep_checkpoints, "Saved states kept (the newest)")
      ->check(tools::positive())->capture_default_str();
  app.add_option("--resume", o.resume,
                 "Continue the run saved in this folder with its settings; --threads, --out, "
                 "--metrics, --checkpoint-every and --keep-checkpoints may be changed, any "
                 "other flag must repeat the saved value")
      ->excludes(checkpoint_dir);
  tools::add_common_options(app, o.common);

  return tools::guarded_main(app, argc, argv, [&] {
    std::optional<nn::LoadedRunState> resumed;
    nlohmann::json settings = settings_json(o, dropout->count() > 0);
    if (!o.resume.empty()) {
      Generator loader_gen(0);  // the model's values come from the file; its stream is restored below
      resumed = tools::load_resume_state("shrink-train", o.resume, loader_gen);
      const nlohmann::json& saved = resumed->state.at("settings");
      settings = tools::resume_settings(app, settings, saved, kOverridable, o.resume);
      apply_settings(o, settings, o.resume);
      o.checkpoint_dir = o.resume;
    }
    const Device device = tools::apply_common_options(o.common);
    tools::check_output_path(o.out, {o.model});  // a checkpoint --model continues is kept: --out is another file
    SHRINK_CHECK(o.checkpoint_every == 0 || !o.checkpoint_dir.empty(),
                 "--checkpoint-every needs --checkpoint-dir");
    if (!o.checkpoint_dir.empty()) tools::check_checkpoint_dir(o.checkpoint_dir);
    Generator gen(o.common.seed);
    const auto schedule = nn::parse_schedule(o.schedule, std::max(o.epochs, 1));  // --epochs 0 saves the init
    // A checkpoint to continue trained on sized images: size the data the same way unless
    // told otherwise. The resolved sizing is what the run saves (a resume repeats it).
    if (!resumed && std::filesystem::is_regular_file(o.model))
      tools::image_options_from_checkpoint(o.images, load_safetensors(o.model).metadata, o.model);
    tools::add_data_settings(settings, o.images, /*with_augment=*/true);
    datasets::Dataset data = datasets::load_dataset(o.data, tools::image_options(o.images));
    const std::int64_t split_size = data.train.size();
    if (o.train_samples > 0) {
      SHRINK_CHECK(o.train_samples <= data.train.size(), "--train-samples ", o.train_samples, ": ", data.name,
                   " has ", data.train.size(), " training samples");
      data.train = datasets::random_subset(data.train, o.train_samples, o.common.seed);
    }

    SHRINK_CHECK(o.dropout >= 0 && o.dropout < 1, "--dropout: P must be in [0, 1), got ", o.dropout);
    std::shared_ptr<nn::Module> model;
    if (resumed) {
      model = resumed->checkpoint.model;
    } else if (std::filesystem::is_regular_file(o.model)) {
      SHRINK_CHECK(!dropout->count(), "--dropout applies to a model built from its name, not to the "
                   "checkpoint ", o.model, " (which keeps the layers it was saved with)");
      model = nn::load_checkpoint(o.model, gen).model;
    } else {
      nlohmann::json spec = tools::spec_for_data(nn::parse_model_text(o.model), data);
      if (dropout->count()) spec["dropout"] = o.dropout;
      model = nn::build_from_spec(spec, gen);
    }
    if (!model->builder_spec().empty())  // a model no builder made has no spec to check
      tools::check_model_fits_data(nn::model_spec(*model), data, "--model " + o.model);
    model->to(device);
    auto optimizer = make_optimizer(o, *model);

    // Where the run stands: the epoch in progress, the running tally of its finished steps
    // and the steps of the whole run so far. A resumed run takes them from its state.
    int first_epoch = 0;
    nn::EpochTally tally;
    std::int64_t global_step = 0;
    // A NaN/Inf step stops the run, or with --nonfinite-retries is skipped (it still uses up
    // its batch, so it counts as a step of the run and of the epoch).
    nn::NonFiniteGuard guard;
    guard.retries = o.nonfinite_retries;
    guard.lr_factor = o.nonfinite_lr_factor;
    guard.on_skip = [&](const std::string& message) {
      std::cerr << "\nshrink-train: warning: " << message << "\n";
      ++global_step;
    };
    if (resumed) {
      const nlohmann::json& st = resumed->state;
      const std::string file = resumed->path;
      try {
        first_epoch = st.at("epoch").get<int>();
        global_step = st.at("global_step").get<std::int64_t>();
        tally = nn::tally_from_json(st.at("tally"), file + ": tally");
        gen = nn::generator_from_json(st.at("generator"), file + ": generator");
        nn::restore_optimizer(*optimizer, resumed->tensors, st.at("optimizer"), file);
        nn::restore_dropout_streams(*model, st.at("dropout"), file);
        guard.skipped = st.at("nonfinite_skipped").get<int>();
        guard.lr_scale = st.at("lr_scale").get<double>();
      } catch (const nlohmann::json::exception& e) {
        fail("--resume ", o.resume, ": ", file, ": bad state (", e.what(), ")");
      }
      SHRINK_CHECK(first_epoch >= 0 && first_epoch <= o.epochs && global_step >= tally.steps, "--resume ",
                   o.resume, ": ", file, ": epoch ", first_epoch, " / global step ", global_step,
                   " do not fit a run of ", o.epochs, " epochs");
      if (first_epoch == o.epochs)
        std::fprintf(stderr, "shrink-train: the saved run finished its %d epochs (step %lld); writing %s\n",
                     o.epochs, static_cast<long long>(global_step), o.out.c_str());
      else
        std::fprintf(stderr, "shrink-train: resuming at epoch %d, step %lld of the epoch (step %lld of the run)\n",
                     first_epoch + 1, static_cast<long long>(tally.steps), static_cast<long long>(global_step));
    }
    auto save_state = [&](int epoch) {
      // The model stays where it is (the optimizer holds its tensors): the writer copies to the host.
      nlohmann::json state{{"settings", settings},
                           {"epoch", epoch},
                           {"global_step", global_step},
                           {"tally", nn::tally_json(tally)},
                           {"generator", nn::generator_json(gen)},
                           {"optimizer", nn::optimizer_scalars(*optimizer)},
                           {"dropout", nn::dropout_streams(*model)},
                           {"nonfinite_skipped", guard.skipped},
                           {"lr_scale", guard.lr_scale}};
      const std::string path = nn::save_run_state(o.checkpoint_dir, global_step, *model,
                                                  nn::optimizer_state_tensors(*optimizer), state,
                                                  o.keep_checkpoints);
      if (tally.steps == 0)
        std::fprintf(stderr, "shrink-train: saved %s (after epoch %d)\n", path.c_str(), epoch);
      else
        std::fprintf(stderr, "shrink-train: saved %s (epoch %d, step %lld of the epoch)\n", path.c_str(),
                     epoch + 1, static_cast<long long>(tally.steps));
    };

    std::ofstream metrics;
    if (!o.metrics.empty()) {
      metrics.open(o.metrics, std::ios::app);
      SHRINK_CHECK(metrics.good(), "--metrics: cannot open ", o.metrics, " for writing");
    }

    datasets::DataLoader train_loader(data.train, o.batch_size, true, o.common.seed);
    tools::augment_loader(train_loader, o.images, data);  // the training loader only
    datasets::DataLoader test_loader(data.test, 1000, false, o.common.seed);
    std::cerr << "shrink-train: " << o.model << " (" << tools::format_count(model->num_parameters())
              << " params) on " << data.name << " ("
              << (o.train_samples > 0 ? std::to_string(data.train.size()) + " of " + std::to_string(split_size)
                                      : std::to_string(data.train.size()))
              << " train / "
              << data.test.size() << " test), " << device.str() << "\n";
    const bool live = tools::stderr_is_terminal();
    nn::EpochResult train, test;
    for (int epoch = first_epoch; epoch < o.epochs; ++epoch) {
      const double lr = schedule->lr_at(o.lr, epoch) * guard.lr_scale;
      optimizer->set_lr(lr);
      train_loader.start_epoch(epoch, tally.steps);  // mid-epoch after a resume
      tools::ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs),
                             train_loader.size(), live);
      try {
        train = nn::train_epoch(*model, *optimizer, tools::batches_of(train_loader), device,
                                o.label_smoothing, [&](std::int64_t step, const nn::EpochResult& r) {
                                  bar.update(step, r.loss, r.accuracy, r.samples);
                                  ++global_step;
                                  if (o.checkpoint_every > 0 && global_step % o.checkpoint_every == 0)
                                    save_state(epoch);
                                }, &tally, &guard);
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
      tally = {};
      // After the metrics line: a kill between the two repeats this epoch's line on resume
      // (same epoch number) rather than losing it.
      if (!o.checkpoint_dir.empty() && o.checkpoint_every == 0) save_state(epoch + 1);
    }
    if (first_epoch >= o.epochs) {  // no epoch ran here (--epochs 0: the initial weights, e.g. for
                                    // lottery-ticket rewinding; or a resumed finished run): still report
      test_loader.start_epoch(0);
      test = nn::evaluate(*model, tools::batches_of(test_loader), device);
    }
    model->to(Device::cpu());
    std::map<std::string, std::string> metadata = {{"data", data.name},
                                                   {"epochs", std::to_string(o.epochs)},
                                                   {"train_samples", std::to_string(data.train.size())},
                                                   {"seed", std::to_string(o.common.seed)},
                                                   {"test_accuracy", std::to_string(test.accuracy)}};
    metadata.merge(tools::image_metadata(data.image));  // how its inputs were sized, for the other tools
    nn::save_checkpoint(o.out, *model, metadata);
    std::printf("saved %s (test accuracy %.2f%%)\n", o.out.c_str(), test.accuracy * 100);
    return 0;
  });
}
