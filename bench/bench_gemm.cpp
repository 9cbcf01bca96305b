// sgemm throughput. Names match bench/peers/gemm_numpy.py (e.g. "BM_sgemm/1024" here,
// "sgemm/1024" there) so a script can pair the JSON outputs; the GFLOPS counter is 2*m*n*k per
// iteration as a rate, in units of 1e9.
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <cstdint>
#include <random>
#include <string>
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

// C(m x n) = op(A) * op(B), row-major, tightly packed. With trans_a, A is stored k x m; with
// trans_b, B is stored n x k.
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

// ---- GEMMs under convolutions ----
// The exact calls kernels/cpu/conv.cpp makes (row-major, NCHW, per group and block of B images
// side by side; K = c_in kh kw, P = out_h out_w):
//   forward          y (c_out, B P)   = W (c_out, K) · col (K, B P)          NN  m=c_out n=B P k=K
//   backward input   dcol (K, B P)    = W^T · dy (c_out, B P), W as stored   TN  m=K     n=B P k=c_out
//   backward weight  dW (c_out, K)    = dy (c_out, B P) · col^T, col stored  NT  m=c_out n=K   k=B P
// B comes from conv.cpp's dims_of at the training batch sizes (resnet20 64, mobilenetv2 32,
// lenet5 128, resnet18 16). Forward and backward-input run one serial GEMM per thread on
// whole image blocks, so their 1-thread figures are the ones that matter; backward-weight
// runs one threaded GEMM at a time. Backward-weight accumulates (beta 1) after its first
// block; here, as in the peers, beta is 0. Names: <layer>.<pass>/<NN|TN|NT>/<m>x<n>x<k>;
// BM_openblas_conv/<same> is OpenBLAS on the same call (below), and bench/peers/gemm_numpy.py
// reads the shape from the name when OpenBLAS cannot be opened here.
struct ConvGemm {
  const char* layer;
  bool trans_a, trans_b;
  std::int64_t m, n, k;
};
const ConvGemm kConvGemms[] = {
    // resnet20 (batch 64): 3x3 convs at 16/32/64 channels on 32/16/8 pixels, the 3-channel stem
    {"resnet20.layer1.fwd", false, false, 16, 1024, 144},
    {"resnet20.layer1.bwd_input", true, false, 144, 1024, 16},
    {"resnet20.layer1.bwd_weight", false, true, 16, 144, 4096},
    {"resnet20.layer2.fwd", false, false, 32, 256, 288},
    {"resnet20.layer2.bwd_input", true, false, 288, 256, 32},
    {"resnet20.layer2.bwd_weight", false, true, 32, 288, 4096},
    {"resnet20.layer3.fwd", false, false, 64, 64, 576},
    {"resnet20.layer3.bwd_input", true, false, 576, 64, 64},
    {"resnet20.layer3.bwd_weight", false, true, 64, 576, 4096},
    {"resnet20.stem.fwd", false, false, 16, 2048, 27},
    {"resnet20.stem.bwd_weight", false, true, 16, 27, 4096},
    // mobilenetv2 (batch 32, CIFAR strides): 1x1 expand / project convs
    {"mobilenetv2.expand24-144@32.fwd", false, false, 144, 2048, 24},
    {"mobilenetv2.expand24-144@32.bwd_input", true, false, 24, 2048, 144},
    {"mobilenetv2.expand24-144@32.bwd_weight", false, true, 144, 24, 4096},
    {"mobilenetv2.project144-24@32.fwd", false, false, 24, 1024, 144},
    {"mobilenetv2.project144-24@32.bwd_input", true, false, 144, 1024, 24},
    {"mobilenetv2.project144-24@32.bwd_weight", false, true, 24, 144, 4096},
    {"mobilenetv2.expand64-384@8.fwd", false, false, 384, 1024, 64},
    {"mobilenetv2.expand64-384@8.bwd_input", true, false, 64, 1024, 384},
    {"mobilenetv2.expand64-384@8.bwd_weight", false, true, 384, 64, 2048},
    {"mobilenetv2.expand96-576@8.fwd", false, false, 576, 640, 96},
    {"mobilenetv2.expand96-576@8.bwd_input", true, false, 96, 640, 576},
    {"mobilenetv2.expand96-576@8.bwd_weight", false, true, 576, 96, 2048},
    // lenet5 (batch 128): conv1 1->6 5x5 (K 25), conv2 6->16 5x5 (K 150)
    {"lenet5.conv1.fwd", false, false, 6, 2352, 25},
    {"lenet5.conv1.bwd_weight", false, true, 6, 25, 4704},
    {"lenet5.conv2.fwd", false, false, 16, 400, 150},
    {"lenet5.conv2.bwd_input", true, false, 150, 400, 16},
    {"lenet5.conv2.bwd_weight", false, true, 16, 150, 4100},
    // resnet18, small-input stem, 64x64 (inference, batch 16): the first and last stages
    {"resnet18.layer1.fwd", false, false, 64, 4096, 576},
    {"resnet18.layer4.fwd", false, false, 512, 64, 4608},
};

// The peer in this binary: OpenBLAS's cblas_sgemm (the library Debian's numpy loads), opened at
// run time so the build does not depend on it. These GEMMs take tens of microseconds, and
// numpy's per-call overhead (a few microseconds) would flatter shrink by several percent.
// OpenBLAS reads OPENBLAS_NUM_THREADS when it loads; run its benchmarks in a process of their
// own (filter BM_openblas_conv), so its thread pool and OpenMP's do not spin against each other.
using CblasSgemm = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                            int lda, const float* b, int ldb, float beta, float* c, int ldc);
CblasSgemm openblas_sgemm() {
  static const CblasSgemm fn = [] {
    void* lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    return lib ? reinterpret_cast<CblasSgemm>(dlsym(lib, "cblas_sgemm")) : nullptr;
  }();
  return fn;
}

void run_openblas_sgemm(benchmark::State& state, const ConvGemm& g) {
  constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;  // cblas.h's enumerators
  const auto a = random_matrix(g.m * g.k, 1);
  const auto b = random_matrix(g.k * g.n, 2);
  std::vector<float> c(static_cast<std::size_t>(g.m * g.n));
  const auto lda = static_cast<int>(g.trans_a ? g.m : g.k), ldb = static_cast<int>(g.trans_b ? g.k : g.n);
  for (auto _ : state) {
    openblas_sgemm()(kRowMajor, g.trans_a ? kTrans : kNoTrans, g.trans_b ? kTrans : kNoTrans, static_cast<int>(g.m),
                     static_cast<int>(g.n), static_cast<int>(g.k), 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(),
                     static_cast<int>(g.n));
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(2e-9 * double(g.m) * double(g.n) * double(g.k),
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::OneK::kIs1000);
}

// "<layer>/<NN|TN|NT>/<m>x<n>x<k>": the name bench/peers/gemm_numpy.py reads a shape from.
std::string gemm_shape(const ConvGemm& g) {
  return std::string(g.layer) + "/" + (g.trans_a ? "T" : "N") + (g.trans_b ? "T" : "N") + "/" + std::to_string(g.m) +
         "x" + std::to_string(g.n) + "x" + std::to_string(g.k);
}

// The GEMMs of one training step of the transformer encoder of bench_encoder.cpp (d 128, FFN 512,
// batch 32 x 64 tokens = 2048 rows; nn::Linear computes y = x W^T, dx = dy W, dW = dy^T x): a
// profiling aid, no peer row.
const ConvGemm kEncoderGemms[] = {
    {"proj.fwd", false, true, 2048, 128, 128},        {"ffn1.fwd", false, true, 2048, 512, 128},
    {"ffn2.fwd", false, true, 2048, 128, 512},        {"ffn1.bwd_input", false, false, 2048, 128, 512},
    {"ffn2.bwd_input", false, false, 2048, 512, 128}, {"ffn1.bwd_weight", true, false, 512, 128, 2048},
    {"ffn2.bwd_weight", true, false, 128, 512, 2048},
};

const int kRegisterEncoderGemms = [] {
  for (const ConvGemm& g : kEncoderGemms)
    benchmark::RegisterBenchmark(("BM_sgemm_encoder/" + gemm_shape(g)).c_str(),
                                 [g](benchmark::State& state) { run_sgemm(state, g.m, g.n, g.k, g.trans_a, g.trans_b); })
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  return 0;
}();

const int kRegisterConvGemms = [] {
  for (const ConvGemm& g : kConvGemms) {
    const std::string shape = gemm_shape(g);
    benchmark::RegisterBenchmark(("BM_sgemm_conv/" + shape).c_str(),
                                 [g](benchmark::State& state) { run_sgemm(state, g.m, g.n, g.k, g.trans_a, g.trans_b); })
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    if (openblas_sgemm())
      benchmark::RegisterBenchmark(("BM_openblas_conv/" + shape).c_str(),
                                   [g](benchmark::State& state) { run_openblas_sgemm(state, g); })
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
