// Cholesky factorisation and the two triangular solves of cholesky_solve (kernels/cpu/
// cholesky.cpp) at the sizes the consumer refit meets: k+1 = 51 .. 5001 for ffn-10000 kept
// at 0.5% .. 50%, with 10 right-hand sides (the classifier's outputs). GFLOPS counts n^3/3
// for the factorisation and 2 n^2 r for the solves.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/backend.h"

namespace {

using shrink::DType;

// A X^T X / m + I: symmetric positive definite, as a ridge-regularised Gram matrix.
std::vector<float> spd(std::int64_t n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const std::int64_t m = 64;
  std::vector<float> x(static_cast<std::size_t>(m * n));
  for (auto& v : x) v = dist(rng);
  std::vector<float> a(static_cast<std::size_t>(n * n), 0.0f);
  auto& cpu = shrink::kernels::backend(shrink::DeviceType::CPU);
  cpu.gemm(DType::Float32, true, false, n, n, m, 1.0 / m, x.data(), n, 0, x.data(), n, 0, 0.0, a.data(), n, 0, 1);
  for (std::int64_t i = 0; i < n; ++i) a[static_cast<std::size_t>(i * n + i)] += 1.0f;
  return a;
}

void BM_cholesky(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto a = spd(n);
  std::vector<float> l(a.size());
  std::int64_t info = 0;
  auto& cpu = shrink::kernels::backend(shrink::DeviceType::CPU);
  for (auto _ : state) {
    cpu.cholesky(DType::Float32, n, a.data(), l.data(), &info);
    benchmark::DoNotOptimize(l.data());
  }
  if (info != n) state.SkipWithError("not positive definite");
  state.counters["GFLOPS"] = benchmark::Counter(1e-9 * double(n) * double(n) * double(n) / 3,
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::OneK::kIs1000);
}
BENCHMARK(BM_cholesky)->Arg(51)->Arg(201)->Arg(1001)->Arg(2501)->Arg(5001)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_triangular_solves(benchmark::State& state) {
  const std::int64_t n = state.range(0), r = 10;
  const auto a = spd(n);
  std::vector<float> l(a.size()), b(static_cast<std::size_t>(n * r), 1.0f), y(b.size()), x(b.size());
  std::int64_t info = 0;
  auto& cpu = shrink::kernels::backend(shrink::DeviceType::CPU);
  cpu.cholesky(DType::Float32, n, a.data(), l.data(), &info);
  for (auto _ : state) {
    cpu.triangular_solve(DType::Float32, n, r, l.data(), false, b.data(), y.data());
    cpu.triangular_solve(DType::Float32, n, r, l.data(), true, y.data(), x.data());
    benchmark::DoNotOptimize(x.data());
  }
  state.counters["GFLOPS"] = benchmark::Counter(2e-9 * double(n) * double(n) * double(r),
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::OneK::kIs1000);
}
BENCHMARK(BM_triangular_solves)->Arg(1001)->Arg(5001)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
