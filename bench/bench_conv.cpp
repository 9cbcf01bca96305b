// Convolutional networks: whole-model training steps and inference passes (the workloads that
// bench/peers/torch_conv.py times in PyTorch, under the same names), the conv kernels alone on
// the layer shapes of those models, and this CPU's FP32 FMA peak measured in the same run, so
// a kernel's GFLOPS counter reads as a fraction of peak (../shared/BENCHMARKING.md).
//
// Names: train_step/<model>/<batch>, inference/<model>/<batch>, conv_fwd|conv_bwd_input|
// conv_bwd_weight/<layer> (n c_in h w -> c_out kxk /stride, groups), conv_fwd_direct/<layer>
// and conv_bwd_weight_direct/<layer> (the direct kernels where those run Winograd; the 16-channel
// direct backward-weight where it runs the pixel-lanes one),
// conv_fwd_winograd/<layer> (Winograd where conv2d runs the direct kernel),
// conv_bwd_input_depthwise_rows/ and conv_bwd_weight_depthwise_rows/<layer> (the row loops on a
// depthwise layer), peak/fma. Chains of blocks in one kernel call: bench/bench_conv_chains.cpp.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "kernels/backend.h"
#include "kernels/cpu/conv_algorithm.h"
#include "kernels/cpu/conv_depthwise_blocked.h"
#include "kernels/cpu/conv_depthwise_rows.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/conv_winograd_channels_last.h"
#include "nn/models.h"
#include "nn/optim.h"

namespace {

using shrink::Generator;
using shrink::Tensor;

// ---- whole models ----

// A model spec; the input shape comes from its builder (nn::input_shape).
struct ModelWorkload {
  const char* spec;
};
// resnet18 with the small-input stem (3x3/1, no max-pool) at 64x64, the issue's inference
// workload; "resnet18-imagenet-stem" is torchvision's own stem (7x7/2 + max-pool) on the same input.
const ModelWorkload kLenet5{R"({"model": "lenet5"})"};
const ModelWorkload kResnet20{R"({"model": "resnet20"})"};
const ModelWorkload kMobilenetv2{R"({"model": "mobilenetv2", "cifar_stride": true})"};
const ModelWorkload kResnet18{R"({"model": "resnet18", "small_input": true, "input_size": 64})"};
const ModelWorkload kResnet18Stem{R"({"model": "resnet18", "input_size": 64})"};

std::shared_ptr<shrink::nn::Module> build(const ModelWorkload& w, Generator& gen) {
  return shrink::nn::build_from_spec(nlohmann::json::parse(w.spec), gen);
}

// A batch of standard-normal inputs of the spec's per-sample shape.
Tensor input_batch(const ModelWorkload& w, std::int64_t batch, Generator& gen) {
  shrink::Shape shape = shrink::nn::input_shape(nlohmann::json::parse(w.spec));
  shape.insert(shape.begin(), batch);
  return Tensor::randn(shape, gen);
}

constexpr int kWarmupSteps = 2;

Tensor labels_for(std::int64_t batch) {
  std::vector<std::int64_t> labels(static_cast<std::size_t>(batch));
  for (std::int64_t i = 0; i < batch; ++i) labels[static_cast<std::size_t>(i)] = i % 10;
  return Tensor::from_vector(labels, {batch});
}

// Forward in training mode (batch statistics, dropout), cross-entropy, backward, SGD with
// momentum 0.9: one step of nn::train_epoch without the data loader.
void train_step(benchmark::State& state, const ModelWorkload& w) {
  const std::int64_t batch = state.range(0);
  Generator gen(0);
  auto model = build(w, gen);
  model->train();
  shrink::nn::SGD optimizer(model->named_parameters(), 0.01, 0.9);
  const Tensor x = input_batch(w, batch, gen);
  const Tensor y = labels_for(batch);
  auto step = [&] {
    optimizer.zero_grad();
    Tensor loss = shrink::cross_entropy((*model)(x), y);
    loss.backward();
    optimizer.step();
    return loss;
  };
  // Warm-up outside the clock: the first steps size the kernels' grow-only scratch buffers and
  // the block cache (page faults), as the peer's warm-up steps do.
  for (int i = 0; i < kWarmupSteps; ++i) step();
  for (auto _ : state) {
    Tensor loss = step();
    benchmark::DoNotOptimize(loss.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["params"] = static_cast<double>(model->num_parameters());
}

// Eval mode (running statistics, no dropout) under no-grad: what shrink-eval's latency times.
void inference(benchmark::State& state, const ModelWorkload& w) {
  const std::int64_t batch = state.range(0);
  Generator gen(0);
  auto model = build(w, gen);
  model->eval();
  const Tensor x = input_batch(w, batch, gen);
  shrink::NoGradGuard no_grad;
  for (int i = 0; i < kWarmupSteps; ++i) (*model)(x);
  for (auto _ : state) {
    Tensor logits = (*model)(x);
    benchmark::DoNotOptimize(logits.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["params"] = static_cast<double>(model->num_parameters());
}

BENCHMARK_CAPTURE(train_step, lenet5, kLenet5)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, resnet20, kResnet20)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, mobilenetv2, kMobilenetv2)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(inference, lenet5, kLenet5)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(inference, resnet20, kResnet20)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(inference, mobilenetv2, kMobilenetv2)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(inference, resnet18, kResnet18)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(inference, resnet18-imagenet-stem, kResnet18Stem)
    ->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- the conv kernels alone ----

struct ConvLayer {
  const char* model;
  std::int64_t n, c_in, hw, c_out, k, stride, groups;
};
// Layers of the workloads above at their batch sizes (padding k/2 everywhere but lenet5.conv2).
const ConvLayer kConvLayers[] = {
    {"resnet20.stem", 64, 3, 32, 16, 3, 1, 1},
    {"resnet20.layer1", 64, 16, 32, 16, 3, 1, 1},
    {"resnet20.layer2.down", 64, 16, 32, 32, 3, 2, 1},
    {"resnet20.layer2", 64, 32, 16, 32, 3, 1, 1},
    {"resnet20.layer3", 64, 64, 8, 64, 3, 1, 1},
    {"resnet20.shortcut3", 64, 32, 16, 64, 1, 2, 1},
    // A ResNet-20 with its block-inner channels halved (shrink-prune --keep 0.5): stage 1's
    // 8-channel side; stream8/16 are stages 1-3 with the residual stream pruned too
    // (--prune-residual --keep 0.25 --round-to 8).
    {"resnet20-pruned.layer1.conv1", 64, 16, 32, 8, 3, 1, 1},
    {"resnet20-pruned.layer1.conv2", 64, 8, 32, 16, 3, 1, 1},
    {"resnet20-pruned.layer1.stream8", 64, 8, 32, 8, 3, 1, 1},
    {"resnet20-pruned.layer2.stream8", 64, 8, 16, 8, 3, 1, 1},
    {"resnet20-pruned.layer3.stream16", 64, 16, 8, 16, 3, 1, 1},
    // and the same network's downsampling layers (3x3 stride 2, the 1x1 stride-2 shortcuts).
    {"resnet20-pruned.layer2.down8", 64, 8, 32, 8, 3, 2, 1},
    {"resnet20-pruned.shortcut2", 64, 8, 32, 8, 1, 2, 1},
    {"resnet20-pruned.layer3.down16", 64, 8, 16, 16, 3, 2, 1},
    {"mobilenetv2.expand", 32, 24, 32, 144, 1, 1, 1},
    {"mobilenetv2.depthwise", 32, 144, 32, 144, 3, 1, 144},
    {"mobilenetv2.depthwise.down", 32, 144, 32, 144, 3, 2, 144},
    {"mobilenetv2.project", 32, 144, 32, 24, 1, 1, 1},
    {"mobilenetv2.depthwise16", 32, 192, 16, 192, 3, 1, 192},
    {"mobilenetv2.expand8", 32, 64, 8, 384, 1, 1, 1},
    {"mobilenetv2.depthwise8", 32, 384, 8, 384, 3, 1, 384},
    {"mobilenetv2.depthwise8.down", 32, 384, 8, 384, 3, 2, 384},
    {"mobilenetv2.project8", 32, 384, 8, 64, 1, 1, 1},
    {"mobilenetv2.depthwise4", 32, 960, 4, 960, 3, 1, 960},
    // MobileNetV2 (width 0.5) with its residual streams pruned (--keep 0.25 --round-to 8): the
    // first 32x32 stage's pointwise layers.
    {"mobilenetv2-pruned.expand", 32, 8, 32, 24, 1, 1, 1},
    {"mobilenetv2-pruned.project", 32, 24, 32, 8, 1, 1, 1},
    {"lenet5.conv1", 128, 1, 28, 6, 5, 1, 1},
    {"lenet5.conv2", 128, 6, 14, 16, 5, 1, 1},
    {"resnet18.layer1", 16, 64, 64, 64, 3, 1, 1},
    {"resnet18.layer4", 16, 512, 8, 512, 3, 1, 1},
};

shrink::kernels::Conv2dShape shape_of(const ConvLayer& l) {
  shrink::kernels::Conv2dShape s;
  s.n = l.n, s.c_in = l.c_in, s.h = s.w = l.hw, s.c_out = l.c_out, s.kh = s.kw = l.k;
  s.stride_h = s.stride_w = l.stride, s.groups = l.groups;
  // lenet5.conv2 is unpadded; conv1 pads 2 and every other layer k/2 (the builders' choice).
  s.pad_h = s.pad_w = std::string(l.model) == "lenet5.conv2" ? 0 : l.k / 2;
  return s;
}

// ForwardDirect, BackwardWeightDirect: the direct kernels on a layer that conv2d sends to
// Winograd; ForwardWinograd: the batched Winograd (tiles as lanes) on a 3x3 layer that conv2d
// sends elsewhere; ForwardWinogradChannelsLast: the channels-last Winograd (channels as lanes) on every
// layer of at most 16 channels each way: the measured alternatives behind conv2d's choice
// (conv_winograd.h winograd_preferred, conv_winograd_channels_last.h winograd_channels_last_preferred);
// ForwardDepthwiseBlocked: the 8-channel depthwise blocks on a depthwise layer that conv2d gives
// the row loops (conv_depthwise_blocked.h depthwise_blocked_preferred); BackwardInputDepthwiseRows,
// BackwardWeightDepthwiseRows: the row loops (conv_depthwise_rows.h) on every depthwise layer,
// whose backward passes conv2d gives the flipped forward kernels or the 8-channel blocks.
enum class ConvPass {
  Forward,
  ForwardDirect,
  ForwardWinograd,
  ForwardWinogradChannelsLast,
  ForwardDepthwiseBlocked,
  BackwardInput,
  BackwardInputDepthwiseRows,
  BackwardWeight,
  BackwardWeightDirect,
  BackwardWeightDepthwiseRows
};

std::vector<float> random_values(std::int64_t count, Generator& gen) {
  const Tensor t = Tensor::randn({count}, gen);
  const float* p = static_cast<const float*>(t.raw_data());
  return {p, p + count};
}

// The kernel conv2d runs for a pass (the label of its row, beside the alternatives' rows).
std::string algorithm_of(const shrink::kernels::Conv2dShape& s, ConvPass pass) {
  namespace cpu = shrink::kernels::cpu;
  switch (pass) {
    case ConvPass::Forward: return cpu::algorithm_name(cpu::forward_algorithm(s));
    case ConvPass::BackwardInput: return cpu::algorithm_name(cpu::backward_input_algorithm(s));
    case ConvPass::BackwardWeight: return cpu::algorithm_name(cpu::backward_weight_algorithm(s));
    default: return "";
  }
}

// One kernel call per iteration, on buffers allocated once; the counter is 2 * multiply-adds
// (the op-level FLOP count of conv2d without the bias).
void conv_kernel(benchmark::State& state, ConvLayer layer, ConvPass pass) {
  using shrink::DType;
  const auto s = shape_of(layer);
  const std::int64_t x_size = s.n * s.c_in * s.h * s.w, y_size = s.n * s.c_out * s.out_h() * s.out_w();
  const std::int64_t w_size = s.c_out * (s.c_in / s.groups) * s.kh * s.kw;
  Generator gen(0);
  std::vector<float> x = random_values(x_size, gen), w = random_values(w_size, gen), y = random_values(y_size, gen);
  auto& cpu = shrink::kernels::backend(shrink::DeviceType::CPU);
  auto call = [&] {
    switch (pass) {
      case ConvPass::Forward: cpu.conv2d(DType::Float32, s, x.data(), w.data(), nullptr, {}, y.data()); break;
      case ConvPass::ForwardDirect: shrink::kernels::cpu::conv2d_forward_direct(s, x.data(), w.data(), nullptr, y.data()); break;
      case ConvPass::ForwardWinograd:
        shrink::kernels::cpu::conv2d_forward_winograd(s, x.data(), w.data(), nullptr, y.data());
        break;
      case ConvPass::ForwardWinogradChannelsLast:
        shrink::kernels::cpu::conv2d_forward_winograd_channels_last(s, x.data(), w.data(), nullptr, y.data());
        break;
      case ConvPass::ForwardDepthwiseBlocked:
        shrink::kernels::cpu::conv2d_forward_depthwise_blocked(s, x.data(), w.data(), nullptr, {}, y.data());
        break;
      case ConvPass::BackwardInput: cpu.conv2d_backward_input(DType::Float32, s, w.data(), y.data(), x.data()); break;
      case ConvPass::BackwardWeight: cpu.conv2d_backward_weight(DType::Float32, s, x.data(), y.data(), w.data()); break;
      case ConvPass::BackwardWeightDirect:
        shrink::kernels::cpu::conv2d_backward_weight_direct(s, x.data(), y.data(), w.data());
        break;
      case ConvPass::BackwardInputDepthwiseRows:
        shrink::kernels::cpu::conv2d_backward_input_depthwise_rows(s, w.data(), y.data(), x.data());
        break;
      case ConvPass::BackwardWeightDepthwiseRows:
        shrink::kernels::cpu::conv2d_backward_weight_depthwise_rows(s, x.data(), y.data(), w.data());
        break;
    }
  };
  state.SetLabel(algorithm_of(s, pass));
  call();  // sizes the kernel's scratch buffers outside the clock
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * double(y_size) * double(s.c_in / s.groups * s.kh * s.kw);
  state.counters["GFLOPS"] = benchmark::Counter(1e-9 * flops, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::OneK::kIs1000);
}

std::string layer_name(const ConvLayer& l) {
  const auto s = shape_of(l);
  return std::string(l.model) + "/" + std::to_string(l.n) + "x" + std::to_string(l.c_in) + "x" +
         std::to_string(l.hw) + "x" + std::to_string(l.hw) + "->" + std::to_string(l.c_out) + "/k" +
         std::to_string(l.k) + "s" + std::to_string(l.stride) + "p" + std::to_string(s.pad_h) + "g" +
         std::to_string(l.groups);
}

// resnet18's layers only run forward (its workload is inference).
const int kRegisterKernels = [] {
  const std::pair<const char*, ConvPass> passes[] = {{"conv_fwd/", ConvPass::Forward},
                                                     {"conv_fwd_direct/", ConvPass::ForwardDirect},
                                                     {"conv_fwd_winograd/", ConvPass::ForwardWinograd},
                                                     {"conv_fwd_winograd_channels_last/", ConvPass::ForwardWinogradChannelsLast},
                                                     {"conv_fwd_depthwise_blocked/", ConvPass::ForwardDepthwiseBlocked},
                                                     {"conv_bwd_input/", ConvPass::BackwardInput},
                                                     {"conv_bwd_input_depthwise_rows/", ConvPass::BackwardInputDepthwiseRows},
                                                     {"conv_bwd_weight/", ConvPass::BackwardWeight},
                                                     {"conv_bwd_weight_direct/", ConvPass::BackwardWeightDirect},
                                                     {"conv_bwd_weight_depthwise_rows/", ConvPass::BackwardWeightDepthwiseRows}};
  for (const auto& [prefix, pass] : passes)
    for (const ConvLayer& layer : kConvLayers) {
      namespace cpu = shrink::kernels::cpu;
      const auto s = shape_of(layer);
      const bool forward = pass == ConvPass::Forward || pass == ConvPass::ForwardDirect ||
                           pass == ConvPass::ForwardWinograd || pass == ConvPass::ForwardWinogradChannelsLast ||
                           pass == ConvPass::ForwardDepthwiseBlocked;
      if (!forward && std::string(layer.model).rfind("resnet18", 0) == 0) continue;
      const cpu::ConvAlgorithm chosen = cpu::forward_algorithm(s);
      const bool winograd_chosen =
          chosen == cpu::ConvAlgorithm::Winograd || chosen == cpu::ConvAlgorithm::WinogradChannelsLast;
      if (pass == ConvPass::ForwardDirect && !winograd_chosen) continue;
      if (pass == ConvPass::ForwardWinograd && (chosen == cpu::ConvAlgorithm::Winograd || !cpu::winograd_applies(s)))
        continue;
      if (pass == ConvPass::ForwardWinogradChannelsLast &&
          (chosen == cpu::ConvAlgorithm::WinogradChannelsLast || !cpu::winograd_channels_last_applies(s)))
        continue;
      if (pass == ConvPass::ForwardDepthwiseBlocked && chosen != cpu::ConvAlgorithm::Depthwise) continue;
      if (pass == ConvPass::BackwardWeightDirect &&
          (cpu::backward_weight_algorithm(s) == cpu::ConvAlgorithm::Direct || cpu::is_depthwise(s)))
        continue;
      if ((pass == ConvPass::BackwardInputDepthwiseRows || pass == ConvPass::BackwardWeightDepthwiseRows) &&
          !cpu::is_depthwise(s))
        continue;
      benchmark::RegisterBenchmark((prefix + layer_name(layer)).c_str(), conv_kernel, layer, pass)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  return 0;
}();

// ---- FP32 peak: independent FMA chains on every OpenMP thread ----
// 12 chains of 8-wide FMAs cover Zen 3's two FMA pipes at 4 cycles' latency; the result is
// kept live so nothing is folded away. FLOPs = threads * iterations * 12 * 8 * 2.
constexpr int kChains = 12;
constexpr std::int64_t kFmaIterations = 1 << 22;

__attribute__((target("avx2,fma"))) float fma_chains(std::int64_t iterations) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * float(i));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (std::int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  return lanes[0] + lanes[7];
}

void peak_fma(benchmark::State& state) {
  const int threads = omp_get_max_threads();
  float sink = 0;
  for (auto _ : state) {
#pragma omp parallel reduction(+ : sink)
    sink += fma_chains(kFmaIterations);
    benchmark::DoNotOptimize(sink);
  }
  state.counters["GFLOPS"] = benchmark::Counter(1e-9 * threads * double(kFmaIterations) * kChains * 8 * 2,
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::OneK::kIs1000);
  state.counters["threads"] = threads;
}
BENCHMARK(peak_fma)->Name("peak/fma")->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
