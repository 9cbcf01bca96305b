// The CSR layer against the dense Linear on the same shape: forward (y = x W^T + b) and a
// full training step (forward + backward), through the layers as training uses them.
// Argument: density in percent of the 784 -> 128 weight, batch 256 (an MLP's first layer).
// The sparse conv the same way against the dense Conv2d (Winograd at this shape): ResNet-20's
// 16 -> 16 3x3 stage-1 layer at 32x32, batch 64, density in percent.
#include <benchmark/benchmark.h>

#include <cmath>

#include "core/shrink.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/sparse_conv.h"
#include "nn/sparse_linear.h"

namespace {

using namespace shrink;

constexpr std::int64_t kIn = 784, kOut = 128, kBatch = 256;

std::shared_ptr<nn::SparseLinear> make_sparse(double density, Generator& gen) {
  nn::Linear dense(kIn, kOut, gen);
  // |w| uniform in [0, bound): keeping |w| >= (1 - density) bound keeps ~density of them.
  const double bound = 1.0 / std::sqrt(static_cast<double>(kIn));
  return nn::SparseLinear::from_dense(dense, (1.0 - density) * bound);
}

void BM_csr_forward(benchmark::State& state) {
  Generator gen(1);
  auto layer = make_sparse(static_cast<double>(state.range(0)) / 100.0, gen);
  Tensor x = Tensor::uniform({kBatch, kIn}, -1, 1, gen);
  NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize((*layer)(x).raw_data());
  state.counters["nnz"] = static_cast<double>(layer->nnz());
}

void BM_dense_forward(benchmark::State& state) {
  Generator gen(1);
  nn::Linear layer(kIn, kOut, gen);
  Tensor x = Tensor::uniform({kBatch, kIn}, -1, 1, gen);
  NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(layer(x).raw_data());
}

void BM_csr_train_step(benchmark::State& state) {
  Generator gen(1);
  auto layer = make_sparse(static_cast<double>(state.range(0)) / 100.0, gen);
  Tensor x = Tensor::uniform({kBatch, kIn}, -1, 1, gen).requires_grad_();
  for (auto _ : state) {
    sum((*layer)(x)).backward();
    layer->zero_grad();
    x.zero_grad();
  }
}

void BM_dense_train_step(benchmark::State& state) {
  Generator gen(1);
  nn::Linear layer(kIn, kOut, gen);
  Tensor x = Tensor::uniform({kBatch, kIn}, -1, 1, gen).requires_grad_();
  for (auto _ : state) {
    sum(layer(x)).backward();
    layer.zero_grad();
    x.zero_grad();
  }
}

}  // namespace

// ResNet-20 stage 1: 64 x 16 x 32 x 32 -> 16, 3x3, padding 1.
std::shared_ptr<nn::Conv2d> stage1_conv(Generator& gen) {
  nn::Conv2dGeometry g;
  g.kernel_h = g.kernel_w = 3, g.padding = 1;
  return std::make_shared<nn::Conv2d>(16, 16, g, true, gen);
}

void BM_csr_conv_forward(benchmark::State& state) {
  Generator gen(1);
  auto dense = stage1_conv(gen);
  const double bound = 1.0 / std::sqrt(16.0 * 9.0), density = static_cast<double>(state.range(0)) / 100.0;
  auto layer = nn::SparseConv2d::from_dense(
      *dense, [&](std::int64_t, std::int64_t, double w) { return std::abs(w) >= (1.0 - density) * bound; });
  Tensor x = Tensor::uniform({64, 16, 32, 32}, -1, 1, gen);
  NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize((*layer)(x).raw_data());
  state.counters["density"] = layer->density();
}

void BM_dense_conv_forward(benchmark::State& state) {
  Generator gen(1);
  auto layer = stage1_conv(gen);
  Tensor x = Tensor::uniform({64, 16, 32, 32}, -1, 1, gen);
  NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize((*layer)(x).raw_data());
}

BENCHMARK(BM_csr_conv_forward)->Arg(10)->Arg(30)->Arg(90)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_dense_conv_forward)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_csr_forward)->Arg(1)->Arg(10)->Arg(30)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_dense_forward)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_csr_train_step)->Arg(10)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_dense_train_step)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
