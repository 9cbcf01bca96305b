// The CSR layer against the dense Linear on the same shape: forward (y = x W^T + b) and a
// full training step (forward + backward), through the layers as training uses them.
// Argument: density in percent of the 784 -> 128 weight, batch 256 (an MLP's first layer).
#include <benchmark/benchmark.h>

#include <cmath>

#include "core/shrink.h"
#include "nn/linear.h"
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

BENCHMARK(BM_csr_forward)->Arg(1)->Arg(10)->Arg(30)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_dense_forward)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_csr_train_step)->Arg(10)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_dense_train_step)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
