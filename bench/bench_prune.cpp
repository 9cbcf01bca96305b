// Pruning throughput: time to score and shrink ffn-10000 (784-10000-10) to 500 hidden
// units with each method (calibration: 1024 samples), and the shrink step alone. GFS needs
// O(width x 10000) block passes, so it is timed at 50 units. bench/peers/torch_prune.py
// times plain PyTorch on the same jobs under the same names (scripts/perf_report.py pairs them).
#include <benchmark/benchmark.h>

#include "core/random.h"
#include "nn/models.h"
#include "prune/methods.h"
#include "prune/pruner.h"
#include "prune/slice.h"

namespace {

using namespace shrink;

prune::Calibration calibration(Generator& gen) {
  std::vector<std::int64_t> labels(1024);
  for (std::int64_t i = 0; i < 1024; ++i) labels[i] = static_cast<std::int64_t>(gen.next_below(10));
  return {Tensor::randn({1024, 784}, gen), Tensor::from_vector(labels, {1024})};
}

void prune_to(benchmark::State& state, const char* method, std::int64_t width) {
  Generator gen(0);
  const prune::Calibration calib = calibration(gen);
  prune::PruneOptions options;
  options.method = method;
  options.target_kind = prune::find_method(method).accepts(prune::TargetKind::Keep) ? prune::TargetKind::Keep
                                                                                   : prune::TargetKind::None;
  options.target = static_cast<double>(width) / 10000.0;
  for (auto _ : state) {
    state.PauseTiming();
    Generator init(1);
    auto model = nn::build_model("ffn-10000", init);
    state.ResumeTiming();
    const prune::PruneReport report = prune::prune_model(*model, calib, options, {784});
    benchmark::DoNotOptimize(report.groups.data());
  }
}

void shrink_only(benchmark::State& state) {
  std::vector<std::int64_t> kept;
  for (std::int64_t i = 0; i < 10000; i += 20) kept.push_back(i);  // 500 units
  for (auto _ : state) {
    state.PauseTiming();
    Generator init(1);
    auto model = nn::build_model("ffn-10000", init);
    auto groups = prune::build_groups(*model);
    state.ResumeTiming();
    prune::shrink_group(*model, groups[0], kept);
  }
}

// The CNN jobs (issue 11): resnet56 (3x32x32) and mobilenetv2 (CIFAR strides, 3x32x32),
// randomly initialised, 256 random calibration images, every block-inner group to half its
// units (pfp: half the parameters; sap decides its own counts). Timed: tracing the groups,
// scoring, selection and the physical rewrite.
void prune_cnn(benchmark::State& state, const char* model_text, const char* method, bool reuse_activations = true) {
  Generator gen(0);
  const std::int64_t n = 256;
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (auto& l : labels) l = static_cast<std::int64_t>(gen.next_below(10));
  const prune::Calibration calib{Tensor::randn({n, 3, 32, 32}, gen), Tensor::from_vector(labels, {n})};
  prune::PruneOptions options;
  options.method = method;
  const prune::Method& m = prune::find_method(method);
  options.target_kind = m.accepts(prune::TargetKind::Keep) ? prune::TargetKind::Keep
                        : m.accepts(prune::TargetKind::Params) ? prune::TargetKind::Params
                                                               : prune::TargetKind::None;
  options.target = 0.5;
  options.reuse_activations = reuse_activations;
  for (auto _ : state) {
    state.PauseTiming();
    Generator init(1);
    auto model = nn::build_model(model_text, init);
    state.ResumeTiming();
    const prune::PruneReport report = prune::prune_model(*model, calib, options, {3, 32, 32});
    benchmark::DoNotOptimize(report.groups.data());
  }
}

// Tracing a CNN's groups alone (one forward pass at batch 2 with hooks): what every job
// above pays before scoring.
void trace_cnn(benchmark::State& state, const char* model_text) {
  Generator init(1);
  auto model = nn::build_model(model_text, init);
  for (auto _ : state) {
    const auto groups = prune::build_groups(*model, {3, 32, 32});
    benchmark::DoNotOptimize(groups.data());
  }
}

}  // namespace

BENCHMARK_CAPTURE(trace_cnn, resnet56, "resnet56")->Name("trace_cnn/resnet56")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(trace_cnn, mobilenetv2, "mobilenetv2:cifar_stride=true")
    ->Name("trace_cnn/mobilenetv2")->Unit(benchmark::kMillisecond);

#define SHRINK_CNN_JOB(model, text, method, iterations)                                                  \
  BENCHMARK_CAPTURE(prune_cnn, model/method, text, #method)                                            \
      ->Name("prune_cnn/" #model "/" #method)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(iterations)
SHRINK_CNN_JOB(resnet56, "resnet56", magnitude, 3);
SHRINK_CNN_JOB(resnet56, "resnet56", random, 3);
SHRINK_CNN_JOB(resnet56, "resnet56", taylor, 1);
// Taylor with every pass in full (PruneOptions::reuse_activations off): what the activation
// memo (prune/activation_memo.h) saves.
BENCHMARK_CAPTURE(prune_cnn, resnet56/taylor/full_passes, "resnet56", "taylor", false)
    ->Name("prune_cnn/resnet56/taylor/full_passes")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
SHRINK_CNN_JOB(resnet56, "resnet56", ispasp, 1);
SHRINK_CNN_JOB(resnet56, "resnet56", pfp, 1);
SHRINK_CNN_JOB(resnet56, "resnet56", sap, 3);
SHRINK_CNN_JOB(mobilenetv2, "mobilenetv2:cifar_stride=true", magnitude, 3);
SHRINK_CNN_JOB(mobilenetv2, "mobilenetv2:cifar_stride=true", random, 3);
SHRINK_CNN_JOB(mobilenetv2, "mobilenetv2:cifar_stride=true", taylor, 1);
SHRINK_CNN_JOB(mobilenetv2, "mobilenetv2:cifar_stride=true", ispasp, 1);
SHRINK_CNN_JOB(mobilenetv2, "mobilenetv2:cifar_stride=true", pfp, 1);
SHRINK_CNN_JOB(mobilenetv2, "mobilenetv2:cifar_stride=true", sap, 3);

// Fixed iteration counts: every iteration first builds a fresh ffn-10000 with the timer
// paused, which would otherwise dominate the wall time of the fast methods (Google
// Benchmark would run hundreds of them to fill its minimum time).
BENCHMARK_CAPTURE(prune_to, ispasp/500, "ispasp", 500)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK_CAPTURE(prune_to, pfp/500, "pfp", 500)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK_CAPTURE(prune_to, pfp-sampling/500, "pfp-sampling", 500)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK_CAPTURE(prune_to, magnitude/500, "magnitude", 500)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(10);
BENCHMARK_CAPTURE(prune_to, magnitude-l2/500, "magnitude-l2", 500)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(10);
BENCHMARK_CAPTURE(prune_to, taylor/500, "taylor", 500)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK_CAPTURE(prune_to, random/500, "random", 500)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(10);
BENCHMARK_CAPTURE(prune_to, sap/auto, "sap", 500)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(10);
BENCHMARK_CAPTURE(prune_to, ispasp/50, "ispasp", 50)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK_CAPTURE(prune_to, gfs/50, "gfs", 50)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(shrink_only)->Name("shrink_only/500")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(10);

BENCHMARK_MAIN();
