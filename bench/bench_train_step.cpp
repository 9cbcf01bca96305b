// One training step (forward, cross-entropy, backward, SGD-momentum) of the FFN models at
// batch 128 — the workload bench/peers/torch_train_step.py times in PyTorch.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "core/ops.h"
#include "core/random.h"
#include "nn/models.h"
#include "nn/optim.h"

namespace {

// `check_finite`: also scan the loss and every gradient for NaN/Inf before the update, as
// nn::train_epoch does (its fault check); the difference between the two is that check's cost.
void train_step(benchmark::State& state, const char* model_name, bool check_finite) {
  using namespace shrink;
  const std::int64_t batch = state.range(0);
  Generator gen(0);
  auto model = nn::build_model(model_name, gen);
  nn::SGD optimizer(model->named_parameters(), 0.01, 0.9);
  const Tensor x = Tensor::randn({batch, 784}, gen);
  std::vector<std::int64_t> labels(batch);
  for (std::int64_t i = 0; i < batch; ++i) labels[i] = i % 10;
  const Tensor y = Tensor::from_vector(labels, {batch});
  for (auto _ : state) {
    optimizer.zero_grad();
    Tensor loss = cross_entropy((*model)(x), y);
    loss.backward();
    if (check_finite) {
      std::vector<Tensor> grads;
      for (const auto& entry : optimizer.named_parameters()) grads.push_back(entry.second.grad());
      benchmark::DoNotOptimize(std::isfinite(loss.item()));
      benchmark::DoNotOptimize(first_nonfinite_each(grads));
    }
    optimizer.step();
    benchmark::DoNotOptimize(loss.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

}  // namespace

BENCHMARK_CAPTURE(train_step, lenet-300-100, "lenet-300-100", false)
    ->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, ffn-10000, "ffn-10000", false)
    ->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, lenet-300-100/checked, "lenet-300-100", true)
    ->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, ffn-10000/checked, "ffn-10000", true)
    ->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
