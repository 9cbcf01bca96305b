// GPU benchmarks: the FFN training step (forward, cross-entropy, backward, SGD-momentum) on
// CUDA at batch 128 and 1024, and memory-bound kernels (softmax rows, elementwise add, as
// bytes/s and as a fraction of the GPU's peak memory bandwidth), plus one float32 GEMM; the
// transformer encoder of bench_encoder (training step and inference) and one layer's attention
// alone at long sequences, fused against the composite (whose T x T scores it never stores).
// bench/peers/torch_gpu.py times the same workloads in PyTorch. Compiles in a CPU-only
// build too; every benchmark then reports "no GPU".
//
// Timing: kernels run asynchronously on the backend's stream, so the training step
// synchronises at the end of every iteration (real time). The kernel benchmarks queue
// kLaunches launches, synchronise once, and report the mean per launch (manual time), so
// the sync latency (~10 us) does not swamp a ~10 us kernel.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "kernels/backend.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/transformer.h"
#ifdef SHRINK_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/tf32.h"
#endif

namespace {

using namespace shrink;

double g_peak_bytes_per_second = 0;  // 0 when unknown; set in main

bool skip_without_gpu(benchmark::State& state) {
  if (cuda_available()) return false;
  state.SkipWithError("no GPU");
  return true;
}

void train_step_cuda(benchmark::State& state, const char* model_name) {
  if (skip_without_gpu(state)) return;
  const std::int64_t batch = state.range(0);
  const Device gpu = Device::cuda();
  Generator gen(0);
  auto model = nn::build_model(model_name, gen);
  model->to(gpu);
  nn::SGD optimizer(model->named_parameters(), 0.01, 0.9);
  const Tensor x = Tensor::randn({batch, 784}, gen).to(gpu);
  std::vector<std::int64_t> labels(batch);
  for (std::int64_t i = 0; i < batch; ++i) labels[i] = i % 10;
  const Tensor y = Tensor::from_vector(labels, {batch}).to(gpu);
  auto step = [&] {
    optimizer.zero_grad();
    Tensor loss = cross_entropy((*model)(x), y);
    loss.backward();
    optimizer.step();
    kernels::backend(DeviceType::CUDA).synchronize();
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up: allocator cache, cuBLAS heuristics
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
}

// Times `launch` as described at the top.
template <class F>
void time_launches(benchmark::State& state, F&& launch) {
  constexpr int kLaunches = 20;
  kernels::Backend& gpu = kernels::backend(DeviceType::CUDA);
  launch();  // warm-up
  gpu.synchronize();
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kLaunches; ++i) launch();
    gpu.synchronize();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    state.SetIterationTime(elapsed.count() / kLaunches);
  }
}

// bytes/s, and the fraction of peak bandwidth, for `bytes` of memory traffic per launch.
void report_bandwidth(benchmark::State& state, double bytes) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  if (g_peak_bytes_per_second > 0)
    state.counters["fraction_of_peak_bw"] = benchmark::Counter(
        bytes / g_peak_bytes_per_second, benchmark::Counter::kIsIterationInvariantRate);
}

// Device buffer of n floats filled with `value`, freed with the benchmark.
struct GpuFloats {
  explicit GpuFloats(std::int64_t n, double value = 0.5) : n(n) {
    ptr = kernels::backend(DeviceType::CUDA).allocate(bytes());
    kernels::backend(DeviceType::CUDA).fill(DType::Float32, n, value, ptr);
  }
  ~GpuFloats() { kernels::backend(DeviceType::CUDA).deallocate(ptr, bytes()); }
  std::size_t bytes() const { return static_cast<std::size_t>(n) * sizeof(float); }
  std::int64_t n;
  void* ptr;
};

void softmax_rows_cuda(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const std::int64_t rows = state.range(0), cols = state.range(1);
  GpuFloats x(rows * cols), y(rows * cols);
  kernels::Backend& gpu = kernels::backend(DeviceType::CUDA);
  time_launches(state, [&] { gpu.softmax(DType::Float32, false, rows, cols, 1, x.ptr, y.ptr); });
  report_bandwidth(state, 2.0 * x.bytes());  // read x, write y
}

void add_cuda(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const std::int64_t n = state.range(0);
  GpuFloats a(n), b(n), c(n);
  kernels::BroadcastShape s;
  s.ndim = 1;
  s.shape[0] = n;
  s.stride_a[0] = s.stride_b[0] = 1;
  kernels::Backend& gpu = kernels::backend(DeviceType::CUDA);
  time_launches(state, [&] {
    gpu.binary(kernels::BinaryOp::Add, DType::Float32, s, a.ptr, b.ptr, c.ptr);
  });
  report_bandwidth(state, 3.0 * a.bytes());  // read a and b, write c
}

// Square float32 GEMM, TF32 off unless SHRINK_ALLOW_TF32=1: FLOP/s as items.
void sgemm_cuda(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const std::int64_t n = state.range(0);
  GpuFloats a(n * n), b(n * n), c(n * n);
  kernels::Backend& gpu = kernels::backend(DeviceType::CUDA);
  time_launches(state, [&] {
    gpu.gemm(DType::Float32, false, false, n, n, n, 1.0, a.ptr, n, 0, b.ptr, n, 0, 0.0, c.ptr, n,
             0, 1);
  });
  state.counters["flops"] = benchmark::Counter(2.0 * n * n * n,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

// bench_encoder's encoder (4 pre-LN layers, d 128, 4 heads, FFN 512, GELU) on the GPU:
// range 0 batch, range 1 tokens, range 2 = 1 for a training step (MSE loss, AdamW), 0 for
// inference; synchronised every iteration (real time).
void encoder_cuda(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const std::int64_t batch = state.range(0), tokens = state.range(1);
  const bool train = state.range(2) != 0;
  nn::EncoderOptions o;
  o.d_model = 128, o.heads = 4, o.ffn = 512, o.layers = 4, o.dropout = 0, o.activation = "gelu";
  o.norm_first = true, o.final_norm = false;
  Generator gen(0);
  nn::TransformerEncoder encoder(o, gen);
  encoder.to(Device::cuda());
  nn::AdamW optimizer(encoder.named_parameters(), 1e-4);
  const Tensor x = Tensor::randn({batch, tokens, 128}, gen).to(Device::cuda());
  if (!train) encoder.eval();
  auto step = [&] {
    if (train) {
      optimizer.zero_grad();
      Tensor loss = mean(square(encoder(x)));
      loss.backward();
      optimizer.step();
    } else {
      NoGradGuard no_grad;
      Tensor y = encoder(x);
      benchmark::DoNotOptimize(y.raw_data());
    }
    kernels::backend(DeviceType::CUDA).synchronize();
  };
  for (int i = 0; i < 3; ++i) step();
  for (auto _ : state) step();
  state.SetLabel(train ? "training step" : "inference");
  state.SetItemsProcessed(state.iterations() * batch);
}

// One layer's multi-head attention, (B, T, 8 heads x 64) projections in, forward only: range 0
// batch, range 1 tokens, range 2 = 1 fused, 0 composite (B x 8 x T x T scores in memory).
void attention_cuda(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const std::int64_t batch = state.range(0), tokens = state.range(1), heads = 8;
  const auto kernel = state.range(2) != 0 ? AttentionKernel::Fused : AttentionKernel::Composite;
  Generator gen(0);
  const Tensor q = Tensor::randn({batch, tokens, heads * 64}, gen).to(Device::cuda());
  const Tensor k = Tensor::randn({batch, tokens, heads * 64}, gen).to(Device::cuda());
  const Tensor v = Tensor::randn({batch, tokens, heads * 64}, gen).to(Device::cuda());
  NoGradGuard no_grad;
  time_launches(state, [&] { benchmark::DoNotOptimize(multi_head_attention(q, k, v, heads, Tensor(), 0, kernel).raw_data()); });
  state.SetLabel(kernel == AttentionKernel::Fused ? "fused" : "composite");
  state.counters["flops"] = benchmark::Counter(4.0 * batch * heads * tokens * tokens * 64,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK_CAPTURE(train_step_cuda, ffn-10000, "ffn-10000")
    ->Arg(128)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(softmax_rows_cuda)->Args({4096, 1024})->Unit(benchmark::kMicrosecond)->UseManualTime();
BENCHMARK(add_cuda)->Arg(64 << 20)->Unit(benchmark::kMicrosecond)->UseManualTime();
BENCHMARK(sgemm_cuda)->Arg(4096)->Unit(benchmark::kMicrosecond)->UseManualTime();
BENCHMARK(encoder_cuda)->ArgsProduct({{32}, {64, 512}, {1, 0}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(attention_cuda)->ArgsProduct({{8}, {512, 2048}, {1, 0}})->Unit(benchmark::kMicrosecond)->UseManualTime();

// The GPU's name and peak memory bandwidth go into the JSON context of every run.
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::string gpu_name = "none";
#ifdef SHRINK_WITH_CUDA
  if (shrink::cuda_available()) {
    cudaDeviceProp prop{};
    int clock_khz = 0, bus_bits = 0;
    if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) gpu_name = prop.name;
    // Double data rate: two transfers per memory clock across the whole bus.
    if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, 0) == cudaSuccess &&
        cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0) == cudaSuccess)
      g_peak_bytes_per_second = 2.0 * clock_khz * 1e3 * bus_bits / 8;
    benchmark::AddCustomContext("tf32", shrink::kernels::cuda::allow_tf32() ? "on" : "off");
  }
#endif
  benchmark::AddCustomContext("gpu", gpu_name);
  benchmark::AddCustomContext("gpu_peak_memory_bandwidth_GBps",
                              g_peak_bytes_per_second > 0
                                  ? std::to_string(g_peak_bytes_per_second / 1e9)
                                  : "unknown");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
