// sgemm throughput. Names match bench/peers/gemm_numpy.py (e.g. "BM_sgemm/1024" here,
// "sgemm/1024" there) so a script can pair the JSON outputs; the GFLOPS counter is 2*m*n*k per
// iteration as a rate, in units of 1e9.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace {

std::vector<float> random_matrix(std::int64_t elems, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(elems));
  for (auto& x : v) x = dist(rng);
  return v;
}

// C(m x n) = op(A) * B, row-major, tightly packed. With trans_a, A is stored k x m.
void run_sgemm(benchmark::State& state, std::int64_t m, std::int64_t n, std::int64_t k, bool trans_a,
               bool trans_b) {
  const auto a = random_matrix(m * k, 1);
  const auto b = random_matrix(k * n, 2);
  std::vector<float> c(static_cast<std::size_t>(m * n));
  const std::int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  for (auto _ : state) {
    shrink::kernels::cpu::sgemm(trans_a, trans_b, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(),
                                n);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(2e-9 * double(m) * double(n) * double(k),
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::OneK::kIs1000);
}

void BM_sgemm(benchmark::State& state) {
  const std::int64_t s = state.range(0);
  run_sgemm(state, s, s, s, false, false);
}
BENCHMARK(BM_sgemm)->Arg(256)->Arg(512)->Arg(1024)->Arg(2048)->UseRealTime()->Unit(benchmark::kMillisecond);

// MLP 784-10000 forward at batch 128: X(128x784) * W^T with W stored (10000 x 784).
void BM_sgemm_ffn(benchmark::State& state) { run_sgemm(state, 128, 10000, 784, false, true); }
BENCHMARK(BM_sgemm_ffn)->Name("BM_sgemm_ffn/128x10000x784")->UseRealTime()->Unit(benchmark::kMillisecond);

// Same layer forward with W stored (784 x 10000), the layout numpy's peer uses.
void BM_sgemm_ffn_nn(benchmark::State& state) { run_sgemm(state, 128, 10000, 784, false, false); }
BENCHMARK(BM_sgemm_ffn_nn)->Name("BM_sgemm_ffn_nn/128x10000x784")->UseRealTime()->Unit(benchmark::kMillisecond);

// Its weight gradient: dW(10000x784) = dY^T * X, dY stored (128 x 10000).
void BM_sgemm_ffn_wgrad(benchmark::State& state) { run_sgemm(state, 10000, 784, 128, true, false); }
BENCHMARK(BM_sgemm_ffn_wgrad)
    ->Name("BM_sgemm_ffn_wgrad_ta/10000x784x128")
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Small layers (LeNet-300-100 / output heads): must not drown in threading overhead.
void BM_sgemm_small_a(benchmark::State& state) { run_sgemm(state, 128, 300, 784, false, false); }
BENCHMARK(BM_sgemm_small_a)->Name("BM_sgemm_small/128x300x784")->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_sgemm_small_b(benchmark::State& state) { run_sgemm(state, 128, 10, 100, false, false); }
BENCHMARK(BM_sgemm_small_b)->Name("BM_sgemm_small/128x10x100")->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
