// The transformer encoder workload of issue 12: 4 pre-LN layers, d_model 128, 4 heads, FFN
// 512, GELU, no dropout, on (batch 32, sequence 64, 128) inputs. A training step (forward,
// mean-square loss, backward, AdamW) and an inference forward — what
// bench/peers/torch_encoder.py times with torch.nn.TransformerEncoder.
#include <benchmark/benchmark.h>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "nn/optim.h"
#include "nn/transformer.h"

namespace {

using namespace shrink;

nn::EncoderOptions options() {
  nn::EncoderOptions o;
  o.d_model = 128, o.heads = 4, o.ffn = 512, o.layers = 4, o.dropout = 0, o.activation = "gelu";
  o.norm_first = true, o.final_norm = false;
  return o;
}

void encoder_train_step(benchmark::State& state) {
  const std::int64_t batch = state.range(0), tokens = state.range(1);
  Generator gen(0);
  nn::TransformerEncoder encoder(options(), gen);
  nn::AdamW optimizer(encoder.named_parameters(), 1e-4);
  const Tensor x = Tensor::randn({batch, tokens, 128}, gen);
  for (auto _ : state) {
    optimizer.zero_grad();
    Tensor loss = mean(square(encoder(x)));
    loss.backward();
    optimizer.step();
    benchmark::DoNotOptimize(loss.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void encoder_inference(benchmark::State& state) {
  const std::int64_t batch = state.range(0), tokens = state.range(1);
  Generator gen(0);
  nn::TransformerEncoder encoder(options(), gen);
  encoder.eval();
  const Tensor x = Tensor::randn({batch, tokens, 128}, gen);
  NoGradGuard no_grad;
  for (auto _ : state) {
    Tensor y = encoder(x);
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

// The attention of one layer alone, (B, T, heads * 32) projections in, by each implementation:
// forward only (range 2 = 0) or forward and backward (1); range 3 picks the kernel.
void attention_op(benchmark::State& state) {
  const std::int64_t batch = state.range(0), tokens = state.range(1), heads = 4;
  const bool backward = state.range(2) != 0;
  const auto kernel = state.range(3) != 0 ? AttentionKernel::Fused : AttentionKernel::Composite;
  Generator gen(0);
  Tensor q = Tensor::randn({batch, tokens, heads * 32}, gen).requires_grad_(backward);
  Tensor k = Tensor::randn({batch, tokens, heads * 32}, gen).requires_grad_(backward);
  Tensor v = Tensor::randn({batch, tokens, heads * 32}, gen).requires_grad_(backward);
  for (auto _ : state) {
    Tensor y = multi_head_attention(q, k, v, heads, Tensor(), 0, kernel);
    if (backward) sum(y).backward();
    benchmark::DoNotOptimize(y.raw_data());
  }
  state.SetLabel(std::string(kernel == AttentionKernel::Fused ? "fused" : "composite") +
                 (backward ? " fwd+bwd" : " fwd"));
  state.SetItemsProcessed(state.iterations() * batch);
}

}  // namespace

BENCHMARK(attention_op)->ArgsProduct({{32}, {64}, {0, 1}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(encoder_train_step)->Args({32, 64})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(encoder_inference)->Args({32, 64})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
