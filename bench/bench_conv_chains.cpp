// Chains of convolution blocks in one kernel call, for inference, against the conv2d calls each
// chain replaces (the same kernels the blocks run apart), on the block shapes of the CIFAR
// ResNets and MobileNetV2, dense and pruned (--prune-residual --keep 0.25 --round-to 8), batch 64.
//
// Names: residual_chain/<stage>/<shape>/blocks<k> and residual_chain_apart/... (k residual blocks
// relu(conv(relu(conv(x))) + x) in one conv2d_residual_chain call, and apart);
// inverted_residual_chain/<stage>/<shape> and inverted_residual_chain_apart/... (MobileNetV2
// blocks in one inverted_residual_chain call, and apart). A row's label says whether the chain
// ran fused ("chained") or fell back to its blocks apart ("apart").
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "kernels/cpu/conv_winograd_channels_last.h"
#include "kernels/cpu/inverted_residual_channels_last.h"

namespace {

using shrink::DType;
using shrink::Generator;
using shrink::Tensor;
using shrink::kernels::Conv2dShape;
using shrink::kernels::ConvEpilogue;

std::vector<float> random_values(std::int64_t count, Generator& gen) {
  const Tensor t = Tensor::randn({count}, gen);
  const float* p = static_cast<const float*>(t.raw_data());
  return {p, p + count};
}

shrink::kernels::Backend& cpu() { return shrink::kernels::backend(shrink::DeviceType::CPU); }

std::int64_t output_size(const Conv2dShape& s) { return s.n * s.c_out * s.out_h() * s.out_w(); }

// Runs `call` once, then times it.
template <class Call>
void time_calls(benchmark::State& state, Call call) {
  call();
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
}

// ---- residual blocks in one conv2d_residual_chain call, and apart ----

// `blocks` blocks relu(conv(relu(conv(x) + b1)) + b2 + x) over c -> m -> c channels, 3x3, padding 1.
struct ChainLayer {
  const char* model;
  std::int64_t n, c, m, hw, blocks;
};
const ChainLayer kChainLayers[] = {
    {"resnet20.layer1", 64, 16, 16, 32, 3},
    {"resnet20.layer2", 64, 32, 32, 16, 2},  // the stage's blocks after its downsampling one
    {"resnet20-pruned-inner.layer1", 64, 16, 8, 32, 3},  // block-inner pruning, keep 0.25
    {"resnet18.layer1", 64, 64, 64, 32, 2},               // small-input stem: 32x32 maps
    {"resnet18-pruned-inner.layer1", 64, 64, 16, 32, 2},
    {"resnet20.layer3", 64, 64, 64, 8, 2},
    {"resnet18-64px.layer1", 16, 64, 64, 64, 2},  // bench_conv's inference/resnet18/16 workload
    {"resnet20-pruned.layer1.stream8", 64, 8, 8, 32, 3},
    {"resnet20-pruned.layer2.stream8", 64, 8, 8, 16, 2},
    {"resnet20-pruned.layer3.stream16", 64, 16, 16, 8, 2},
};

// One conv2d_residual_chain per iteration (apart: the conv2d calls it replaces).
void residual_chain(benchmark::State& state, ChainLayer l, bool apart) {
  Conv2dShape s1;
  s1.n = l.n, s1.c_in = l.c, s1.h = s1.w = l.hw, s1.c_out = l.m, s1.kh = s1.kw = 3, s1.pad_h = s1.pad_w = 1;
  Conv2dShape s2 = s1;
  s2.c_in = l.m, s2.c_out = l.c;
  const std::vector<Conv2dShape> first(static_cast<std::size_t>(l.blocks), s1),
      second(static_cast<std::size_t>(l.blocks), s2);
  Generator gen(0);
  const std::int64_t x_size = l.n * l.c * l.hw * l.hw, mid_size = l.n * l.m * l.hw * l.hw;
  const std::vector<float> x = random_values(x_size, gen), w1 = random_values(l.m * l.c * 9, gen),
                           w2 = random_values(l.c * l.m * 9, gen), b1 = random_values(l.m, gen),
                           b2 = random_values(l.c, gen);
  const std::vector<const void*> pw1(first.size(), w1.data()), pb1(first.size(), b1.data()),
      pw2(first.size(), w2.data()), pb2(first.size(), b2.data());
  std::vector<float> mid(static_cast<std::size_t>(mid_size)), y(static_cast<std::size_t>(x_size)), in(y.size());
  ConvEpilogue relu;
  relu.activate = true;
  auto call = [&] {
    if (!apart)
      return cpu().conv2d_residual_chain(DType::Float32, l.blocks, first.data(), second.data(), x.data(), pw1.data(),
                                       pb1.data(), pw2.data(), pb2.data(), y.data());
    const float* block_in = x.data();
    for (std::int64_t b = 0; b < l.blocks; ++b) {
      ConvEpilogue add_relu = relu;
      add_relu.residual = block_in;
      cpu().conv2d(DType::Float32, s1, block_in, w1.data(), b1.data(), relu, mid.data());
      cpu().conv2d(DType::Float32, s2, mid.data(), w2.data(), b2.data(), add_relu, y.data());
      if (b + 1 < l.blocks) in = y, block_in = in.data();
    }
  };
  state.SetLabel(apart ? "conv2d calls" : shrink::kernels::cpu::residual_pair_fuses(s1, s2) ? "chained" : "apart");
  time_calls(state, call);
}

const int kRegisterChains = [] {
  for (const ChainLayer& l : kChainLayers)
    for (bool apart : {false, true}) {
      const std::string name = std::string(apart ? "residual_chain_apart/" : "residual_chain/") + l.model + "/" +
                               std::to_string(l.n) + "x" + std::to_string(l.c) + "x" + std::to_string(l.hw) + "x" +
                               std::to_string(l.hw) + "->" + std::to_string(l.m) + "->" + std::to_string(l.c) +
                               "/blocks" + std::to_string(l.blocks);
      benchmark::RegisterBenchmark(name.c_str(), residual_chain, l, apart)->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
  return 0;
}();

// ---- MobileNetV2 blocks in one inverted_residual_chain call, and apart ----

struct InvertedBlock {
  std::int64_t hidden, c_out, stride;
  bool expand, residual;
};
struct InvertedStage {
  const char* model;
  std::int64_t n, c, hw;
  std::vector<InvertedBlock> blocks;
};
// MobileNetV2 (width 0.5, CIFAR strides) at 32x32, and the same pruned to keep 0.25 of every group;
// width 1.0 at 32x32, and torchvision's at 224x224 (batch 8).
const InvertedStage kInvertedStages[] = {
    {"mobilenetv2.features2-3", 64, 8, 32, {{48, 16, 1, true, false}, {96, 16, 1, true, true}}},
    {"mobilenetv2.features5-6", 64, 16, 16, {{96, 16, 1, true, true}, {96, 16, 1, true, true}}},
    {"mobilenetv2.features8-10", 64, 32, 8, {{192, 32, 1, true, true}, {192, 32, 1, true, true}, {192, 32, 1, true, true}}},
    {"mobilenetv2.features15-16", 64, 80, 4, {{480, 80, 1, true, true}, {480, 80, 1, true, true}}},
    {"mobilenetv2-w1.features3", 64, 24, 32, {{144, 24, 1, true, true}}},  // width 1.0
    {"mobilenetv2-224.features2-3", 8, 16, 112, {{96, 24, 2, true, false}, {144, 24, 1, true, true}}},
    {"mobilenetv2-pruned.features1-4", 64, 8, 32,
     {{8, 8, 1, false, false}, {16, 8, 1, true, false}, {24, 8, 1, true, true}, {24, 8, 2, true, false}}},
    {"mobilenetv2-pruned.features8-11", 64, 8, 8,
     {{48, 8, 1, true, true}, {48, 8, 1, true, true}, {48, 8, 1, true, true}, {48, 16, 1, true, false}}},
    {"mobilenetv2-pruned.features15-16", 64, 24, 4, {{120, 24, 1, true, true}, {120, 24, 1, true, true}}},
};

Conv2dShape pointwise(std::int64_t n, std::int64_t c_in, std::int64_t hw, std::int64_t c_out) {
  Conv2dShape s;
  s.n = n, s.c_in = c_in, s.h = s.w = hw, s.c_out = c_out, s.kh = s.kw = 1;
  return s;
}

void inverted_residual_chain(benchmark::State& state, const InvertedStage* stage, bool apart) {
  Generator gen(0);
  std::vector<shrink::kernels::InvertedResidualBlock> blocks;
  std::vector<std::vector<float>> weights;  // each block's six tensors, kept alive
  std::int64_t c = stage->c, hw = stage->hw, widest = 0;
  for (const InvertedBlock& b : stage->blocks) {
    shrink::kernels::InvertedResidualBlock k;
    k.has_expand = b.expand;
    k.residual = b.residual;
    if (b.expand) k.expand = pointwise(stage->n, c, hw, b.hidden);
    Conv2dShape& d = k.depthwise;
    d.n = stage->n, d.c_in = d.c_out = d.groups = b.hidden, d.h = d.w = hw, d.kh = d.kw = 3;
    d.stride_h = d.stride_w = b.stride, d.pad_h = d.pad_w = 1;
    k.project = pointwise(stage->n, b.hidden, d.out_h(), b.c_out);
    for (std::int64_t size : {b.hidden * c, b.hidden, b.hidden * 9, b.hidden, b.c_out * b.hidden, b.c_out})
      weights.push_back(random_values(size, gen));
    const std::size_t at = weights.size() - 6;
    k.expand_weight = weights[at].data(), k.expand_bias = weights[at + 1].data();
    k.depthwise_weight = weights[at + 2].data(), k.depthwise_bias = weights[at + 3].data();
    k.project_weight = weights[at + 4].data(), k.project_bias = weights[at + 5].data();
    widest = std::max({widest, output_size(k.depthwise), b.expand ? output_size(k.expand) : 0});
    blocks.push_back(k);
    c = b.c_out;
    hw = k.project.h;
  }
  const std::vector<float> x = random_values(stage->n * stage->c * stage->hw * stage->hw, gen);
  std::vector<float> y(static_cast<std::size_t>(output_size(blocks.back().project)));
  std::int64_t stream = 0;  // the widest map between blocks
  for (const auto& k : blocks) stream = std::max(stream, output_size(k.project));
  std::vector<float> e(static_cast<std::size_t>(widest)), d(e.size()), maps[2];
  for (auto& m : maps) m.resize(static_cast<std::size_t>(stream));
  ConvEpilogue relu6;
  relu6.activate = true;
  relu6.activation = shrink::kernels::UnaryOp::Relu6;
  auto call = [&] {
    if (!apart)
      return cpu().inverted_residual_chain(DType::Float32, static_cast<std::int64_t>(blocks.size()), blocks.data(),
                                           x.data(), y.data());
    const float* in = x.data();
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const auto& k = blocks[b];
      const float* expanded = in;
      if (k.has_expand) {
        cpu().conv2d(DType::Float32, k.expand, in, k.expand_weight, k.expand_bias, relu6, e.data());
        expanded = e.data();
      }
      cpu().conv2d(DType::Float32, k.depthwise, expanded, k.depthwise_weight, k.depthwise_bias, relu6, d.data());
      ConvEpilogue add;
      add.residual = k.residual ? in : nullptr;
      float* out = b + 1 == blocks.size() ? y.data() : maps[b % 2].data();
      cpu().conv2d(DType::Float32, k.project, d.data(), k.project_weight, k.project_bias, add, out);
      in = out;
    }
  };
  bool fused = true;
  for (const auto& k : blocks) fused = fused && shrink::kernels::cpu::inverted_residual_fuses(k);
  state.SetLabel(apart ? "conv2d calls" : fused ? "chained" : "apart");
  time_calls(state, call);
}

const int kRegisterInverted = [] {
  for (const InvertedStage& s : kInvertedStages)
    for (bool apart : {false, true}) {
      std::string name = std::string(apart ? "inverted_residual_chain_apart/" : "inverted_residual_chain/") + s.model +
                         "/" + std::to_string(s.n) + "x" + std::to_string(s.c) + "x" + std::to_string(s.hw) + "x" +
                         std::to_string(s.hw);
      for (const InvertedBlock& b : s.blocks)
        name += "->[" + std::to_string(b.hidden) + (b.stride == 2 ? "/2" : "") + "]" + std::to_string(b.c_out);
      benchmark::RegisterBenchmark(name.c_str(), inverted_residual_chain, &s, apart)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
