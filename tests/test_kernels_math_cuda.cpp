// The CUDA math kernels (reduce, softmax family, optimizer steps, GEMM) against their CPU
// twins on odd shapes, in float and double, and one small MLP trained on both devices.
// Bounds (|gpu - cpu| <= bound), with eps_T = 1e-5 for float and 1e-12 for double unless said:
//   reduce sum       eps_T * sum|x| of the row (tree order vs the CPU's vector order)
//   reduce max       exact, argmax exact (ties -> first index, NaN rule as the CPU)
//   softmax family   eps_T * (1 + |cpu|) (the CPU forms exp(x-m)/total, the GPU exp(x-lse))
//   optimizer steps  eps_T / 10 * (1 + |cpu|) (same formula; only FMA contraction differs)
//   GEMM             eps_T * (|alpha| sum_k |a||b| + |beta c|), TF32 off; 1e-2 with TF32 on
// Every test skips where no GPU is present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/random.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "tests/test_helpers.h"
#include "nn/models.h"
#include "nn/optim.h"
#ifdef SHRINK_WITH_CUDA
#include "kernels/cuda/tf32.h"
#endif

namespace shrink::kernels {
namespace {

Backend& cpu() { return backend(DeviceType::CPU); }
Backend& gpu() { return backend(DeviceType::CUDA); }

template <class T> constexpr DType dt() {
  return std::is_same_v<T, float> ? DType::Float32 : DType::Float64;
}
template <class T> constexpr double eps() { return std::is_same_v<T, float> ? 1e-5 : 1e-12; }

template <class T>
std::vector<T> random_vec(std::int64_t n, std::uint64_t seed, double lo = -1, double hi = 1) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(d(rng));
  return v;
}

std::vector<std::int64_t> random_labels(std::int64_t n, std::int64_t c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(c));
  return v;
}

// A device copy of a host vector; host() reads it back (copy_to_host synchronises).
template <class T>
class DeviceVec {
 public:
  explicit DeviceVec(const std::vector<T>& h) : n_(h.size()), p_(gpu().allocate(bytes())) {
    gpu().copy_from_host(p_, h.data(), bytes());
  }
  explicit DeviceVec(size_t n) : DeviceVec(std::vector<T>(n)) {}
  DeviceVec(const DeviceVec&) = delete;
  DeviceVec& operator=(const DeviceVec&) = delete;
  ~DeviceVec() { gpu().deallocate(p_, bytes()); }
  T* get() const { return static_cast<T*>(p_); }
  std::vector<T> host() const {
    std::vector<T> h(n_);
    gpu().copy_to_host(h.data(), p_, bytes());
    return h;
  }

 private:
  size_t bytes() const { return n_ * sizeof(T); }
  size_t n_;
  void* p_;
};

// |got - want| <= scale * bound[i] for every i (bound defaults to 1 + |want|).
template <class T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want, double scale,
                  const std::string& what, const std::vector<double>& bound = {}) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    const double b = scale * (bound.empty() ? 1 + std::abs(double(want[i])) : bound[i]);
    ASSERT_NEAR(double(got[i]), double(want[i]), b) << what << " at " << i;
  }
}

template <class T>
class CudaMath : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CudaMath, FloatTypes);

struct Shape3 { std::int64_t outer, mid, inner; };
std::string str(const Shape3& s) {
  return "(" + std::to_string(s.outer) + "," + std::to_string(s.mid) + "," +
         std::to_string(s.inner) + ")";
}

// Rows of warp size, block size, long rows split into chunks (3 rows of 200003), columns.
const std::vector<Shape3> kReduceShapes = {{1, 1, 1},    {7, 13, 1},     {13, 7, 1},
                                           {5, 2049, 1}, {3, 200003, 1}, {33, 1000, 3},
                                           {2, 1, 5},    {4, 0, 1},      {4, 0, 3}};

TYPED_TEST(CudaMath, ReduceSumAndMaxMatchCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (const auto& s : kReduceShapes) {
    // Quarter steps make ties common, so the first-index rule is exercised.
    auto x = random_vec<T>(s.outer * s.mid * s.inner, 11);
    for (auto& v : x) v = std::round(v * 4) / 4;
    const size_t nout = static_cast<size_t>(s.outer * s.inner);
    std::vector<T> want(nout), got_max;
    std::vector<std::int64_t> want_at(nout);
    DeviceVec<T> dx(x), dout(nout);
    DeviceVec<std::int64_t> dat(nout);

    cpu().reduce(ReduceOp::Sum, dt<T>(), s.outer, s.mid, s.inner, x.data(), want.data(), nullptr);
    gpu().reduce(ReduceOp::Sum, dt<T>(), s.outer, s.mid, s.inner, dx.get(), dout.get(), nullptr);
    std::vector<double> abs_sum(nout, 0.0);
    for (std::int64_t o = 0; o < s.outer; ++o)
      for (std::int64_t r = 0; r < s.mid; ++r)
        for (std::int64_t i = 0; i < s.inner; ++i)
          abs_sum[o * s.inner + i] += std::abs(double(x[(o * s.mid + r) * s.inner + i]));
    for (auto& b : abs_sum) b += 1e-30;
    expect_close(dout.host(), want, eps<T>(), "sum " + str(s), abs_sum);

    cpu().reduce(ReduceOp::Max, dt<T>(), s.outer, s.mid, s.inner, x.data(), want.data(),
                 want_at.data());
    gpu().reduce(ReduceOp::Max, dt<T>(), s.outer, s.mid, s.inner, dx.get(), dout.get(), dat.get());
    EXPECT_EQ(dout.host(), want) << "max " << str(s);
    EXPECT_EQ(dat.host(), want_at) << "argmax " << str(s);
  }
}

TYPED_TEST(CudaMath, ReduceMaxFollowsCpuNanRuleAndIsDeterministic) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  // Rows of 5: NaN first (wins), NaN inside (skipped), all equal (index 0), -inf only.
  const T inf = std::numeric_limits<T>::infinity();
  const std::vector<T> x = {nan, 1, 2, 3, 2,   1, nan, 3, 3, 0,   4, 4, 4, 4, 4,
                            -inf, -inf, -inf, -inf, -inf};
  std::vector<T> want(4);
  std::vector<std::int64_t> want_at(4);
  cpu().reduce(ReduceOp::Max, dt<T>(), 4, 5, 1, x.data(), want.data(), want_at.data());
  DeviceVec<T> dx(x), dout(4);
  DeviceVec<std::int64_t> dat(4);
  gpu().reduce(ReduceOp::Max, dt<T>(), 4, 5, 1, dx.get(), dout.get(), dat.get());
  const auto got = dout.host();
  EXPECT_TRUE(std::isnan(got[0]) && std::isnan(want[0]));
  for (int i = 1; i < 4; ++i) EXPECT_EQ(got[i], want[i]) << "row " << i;
  EXPECT_EQ(dat.host(), want_at);

  // The chunked sum gives the same bits twice.
  const auto big = random_vec<T>(2 * 300007, 5);
  DeviceVec<T> dbig(big), s1(2), s2(2);
  gpu().reduce(ReduceOp::Sum, dt<T>(), 2, 300007, 1, dbig.get(), s1.get(), nullptr);
  gpu().reduce(ReduceOp::Sum, dt<T>(), 2, 300007, 1, dbig.get(), s2.get(), nullptr);
  EXPECT_EQ(s1.host(), s2.host());
}

// Warp rows, block rows (3001 > 1024), and inner > 1 (column kernel).
const std::vector<Shape3> kSoftmaxShapes = {{1, 1, 1}, {7, 13, 1}, {4, 3001, 1},
                                            {33, 1000, 3}, {3, 5, 7}, {1, 1, 9}};

TYPED_TEST(CudaMath, SoftmaxForwardAndBackwardMatchCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (const auto& s : kSoftmaxShapes)
    for (bool log : {false, true}) {
      const std::int64_t n = s.outer * s.mid * s.inner;
      const auto x = random_vec<T>(n, 21, -4, 4);
      const auto dy = random_vec<T>(n, 22);
      std::vector<T> y(n), dx(n);
      cpu().softmax(dt<T>(), log, s.outer, s.mid, s.inner, x.data(), y.data());
      cpu().softmax_backward(dt<T>(), log, s.outer, s.mid, s.inner, y.data(), dy.data(), dx.data());
      DeviceVec<T> gx(x), gy(static_cast<size_t>(n)), gdy(dy), gdx(static_cast<size_t>(n));
      gpu().softmax(dt<T>(), log, s.outer, s.mid, s.inner, gx.get(), gy.get());
      const std::string what = std::string(log ? "log_softmax " : "softmax ") + str(s);
      expect_close(gy.host(), y, eps<T>(), what);
      DeviceVec<T> cpu_y(y);  // backward from the same y on both sides
      gpu().softmax_backward(dt<T>(), log, s.outer, s.mid, s.inner, cpu_y.get(), gdy.get(),
                             gdx.get());
      expect_close(gdx.host(), dx, eps<T>(), what + " backward");
    }
}

TYPED_TEST(CudaMath, CrossEntropyMatchesCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  const std::vector<std::pair<std::int64_t, std::int64_t>> shapes = {
      {1, 1}, {7, 13}, {129, 1000}, {5, 3001}};
  for (auto [n, c] : shapes)
    for (double smoothing : {0.0, 0.1}) {
      const auto z = random_vec<T>(n * c, 31, -5, 5);
      const auto labels = random_labels(n, c, 32);
      std::vector<T> loss(n), probs(n * c), grad(n * c);
      cpu().cross_entropy(dt<T>(), n, c, smoothing, z.data(), labels.data(), loss.data(),
                          probs.data());
      cpu().cross_entropy_backward(dt<T>(), n, c, smoothing, 1.0 / n, probs.data(), labels.data(),
                                   grad.data());
      const auto nc = static_cast<size_t>(n * c);
      DeviceVec<T> gz(z), gloss(static_cast<size_t>(n)), gprobs(nc), ggrad(nc);
      DeviceVec<std::int64_t> glabels(labels);
      gpu().cross_entropy(dt<T>(), n, c, smoothing, gz.get(), glabels.get(), gloss.get(),
                          gprobs.get());
      const std::string what = "cross_entropy " + std::to_string(n) + "x" + std::to_string(c) +
                               " smoothing " + std::to_string(smoothing);
      expect_close(gloss.host(), loss, eps<T>(), what + " loss");
      expect_close(gprobs.host(), probs, eps<T>(), what + " probs");
      DeviceVec<T> cpu_probs(probs);
      gpu().cross_entropy_backward(dt<T>(), n, c, smoothing, 1.0 / n, cpu_probs.get(),
                                   glabels.get(), ggrad.get());
      expect_close(ggrad.host(), grad, eps<T>(), what + " backward");
    }
}

TYPED_TEST(CudaMath, OptimizerStepsMatchCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (std::int64_t n : {1, 257, 100003}) {
    const auto w0 = random_vec<T>(n, 41), b0 = random_vec<T>(n, 43);
    const auto v0 = random_vec<T>(n, 44, 0, 1);
    const std::vector<SgdParams> sgd = {{0.1, 0, 0, 0, false, false},
                                        {0.1, 0.9, 0, 0, false, true},
                                        {0.05, 0.9, 0.1, 1e-2, true, false},
                                        {0.05, 0.9, 0, 1e-2, false, false}};
    for (size_t k = 0; k < sgd.size(); ++k) {
      for (bool with_buffer : {true, false}) {
        auto w = w0, buf = b0;
        const auto g = random_vec<T>(n, 42 + k);
        DeviceVec<T> gw(w), gg(g), gbuf(buf);
        cpu().sgd_step(dt<T>(), n, sgd[k], w.data(), g.data(), with_buffer ? buf.data() : nullptr);
        gpu().sgd_step(dt<T>(), n, sgd[k], gw.get(), gg.get(), with_buffer ? gbuf.get() : nullptr);
        const std::string what = "sgd config " + std::to_string(k) + " n " + std::to_string(n);
        expect_close(gw.host(), w, eps<T>() / 10, what + " param");
        expect_close(gbuf.host(), buf, eps<T>() / 10, what + " buffer");
      }
    }
    for (std::int64_t step : {1, 7}) {
      const AdamWParams p{1e-3, 0.9, 0.999, 1e-8, 1e-2, step};
      auto w = w0, m = b0, v = v0;
      const auto g = random_vec<T>(n, 45);
      DeviceVec<T> gw(w), gg(g), gm(m), gv(v);
      cpu().adamw_step(dt<T>(), n, p, w.data(), g.data(), m.data(), v.data());
      gpu().adamw_step(dt<T>(), n, p, gw.get(), gg.get(), gm.get(), gv.get());
      const std::string what = "adamw step " + std::to_string(step) + " n " + std::to_string(n);
      expect_close(gw.host(), w, eps<T>() / 10, what + " param");
      expect_close(gm.host(), m, eps<T>() / 10, what + " exp_avg");
      expect_close(gv.host(), v, eps<T>() / 10, what + " exp_avg_sq");
    }
  }
}

// ---- GEMM ----

struct GemmCase {
  std::int64_t m, n, k, batch;
  bool broadcast_a = false, broadcast_b = false, shared_c = false;
  std::int64_t pad = 0;  // extra leading-dimension elements (submatrix views)
};

// Runs one case on both devices and compares C within tol * (|alpha| sum|a||b| + |beta c|).
template <class T>
void check_gemm(const GemmCase& g, bool ta, bool tb, double alpha, double beta, double tol) {
  const std::int64_t rows_a = ta ? g.k : g.m, cols_a = ta ? g.m : g.k;
  const std::int64_t rows_b = tb ? g.n : g.k, cols_b = tb ? g.k : g.n;
  const std::int64_t lda = std::max<std::int64_t>(cols_a, 1) + g.pad;
  const std::int64_t ldb = std::max<std::int64_t>(cols_b, 1) + g.pad, ldc = g.n + g.pad;
  const std::int64_t sa = g.broadcast_a ? 0 : rows_a * lda, sb = g.broadcast_b ? 0 : rows_b * ldb;
  const std::int64_t sc = g.shared_c ? 0 : g.m * ldc;
  const auto a = random_vec<T>(std::max<std::int64_t>(rows_a * lda, 1) * (sa ? g.batch : 1), 51);
  const auto b = random_vec<T>(std::max<std::int64_t>(rows_b * ldb, 1) * (sb ? g.batch : 1), 52);
  const auto c0 = random_vec<T>(g.m * ldc * (sc ? g.batch : 1), 53);
  std::vector<double> bound(c0.size(), 1e-30);
  for (std::int64_t q = 0; q < g.batch; ++q)
    for (std::int64_t i = 0; i < g.m; ++i)
      for (std::int64_t j = 0; j < g.n; ++j) {
        double acc = 0;
        for (std::int64_t p = 0; p < g.k; ++p) {
          const double av = a[q * sa + (ta ? p * lda + i : i * lda + p)];
          const double bv = b[q * sb + (tb ? j * ldb + p : p * ldb + j)];
          acc += std::abs(av * bv);
        }
        const std::int64_t at = q * sc + i * ldc + j;
        bound[at] += std::abs(alpha) * acc + std::abs(beta * c0[at]);
      }
  for (auto& x : bound) x *= tol;
  auto want = c0;
  cpu().gemm(dt<T>(), ta, tb, g.m, g.n, g.k, alpha, a.data(), lda, sa, b.data(), ldb, sb, beta,
             want.data(), ldc, sc, g.batch);
  DeviceVec<T> ga(a), gb(b), gc(c0);
  gpu().gemm(dt<T>(), ta, tb, g.m, g.n, g.k, alpha, ga.get(), lda, sa, gb.get(), ldb, sb, beta,
             gc.get(), ldc, sc, g.batch);
  const std::string what = "gemm m" + std::to_string(g.m) + " n" + std::to_string(g.n) + " k" +
                           std::to_string(g.k) + " batch" + std::to_string(g.batch) +
                           (ta ? " A^T" : "") + (tb ? " B^T" : "") +
                           (g.broadcast_a ? " A-broadcast" : "") +
                           (g.broadcast_b ? " B-broadcast" : "") + (g.shared_c ? " C-shared" : "") +
                           " beta " + std::to_string(beta);
  expect_close(gc.host(), want, 1.0, what, bound);
}

TYPED_TEST(CudaMath, GemmMatchesCpuForAllTransposesAndBatchStrides) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
#ifdef SHRINK_WITH_CUDA
  const bool was = cuda::allow_tf32();  // SHRINK_ALLOW_TF32=1 may have turned it on
  cuda::set_allow_tf32(false);
#endif
  const std::vector<GemmCase> cases = {
      {1, 1, 1, 1},           {7, 13, 5, 1},          {257, 129, 130, 1},
      {64, 1, 300, 1},        {1, 300, 64, 1},        {33, 17, 9, 3, false, false, false, 3},
      {33, 17, 9, 3, true},   {33, 17, 9, 3, false, true, false, 2},
      {5, 6, 7, 2, false, false, true},  // shared C: batches accumulate in order
      {3, 4, 0, 1}};                     // k = 0: C = beta C
  for (const auto& g : cases)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (double beta : {0.0, 0.5}) check_gemm<T>(g, ta, tb, 1.5, beta, eps<T>());
#ifdef SHRINK_WITH_CUDA
  cuda::set_allow_tf32(was);
#endif
}

#ifdef SHRINK_WITH_CUDA
TEST(CudaGemm, Tf32IsOptInAndStaysWithinItsPrecision) {
  SHRINK_SKIP_WITHOUT_GPU();
  const bool was = cuda::allow_tf32();
  cuda::set_allow_tf32(true);
  EXPECT_TRUE(cuda::allow_tf32());
  // TF32 keeps 10 mantissa bits: each product is within ~2^-10 of float's.
  check_gemm<float>({257, 129, 130, 2}, false, true, 1.0, 0.0, 2e-3);
  cuda::set_allow_tf32(was);
}
#endif

TEST(CudaGemm, RejectsWhatCublasCannotDo) {
  SHRINK_SKIP_WITHOUT_GPU();
  EXPECT_THROW(gpu().gemm(DType::Int64, false, false, 2, 2, 2, 1, nullptr, 2, 0, nullptr, 2, 0, 0,
                          nullptr, 2, 0, 1),
               Unsupported);
  const std::int64_t huge = std::int64_t{1} << 32;  // checked before any memory is touched
  EXPECT_THROW(gpu().gemm(DType::Float32, false, false, huge, 2, 2, 1, nullptr, 2, 0, nullptr, 2,
                          0, 0, nullptr, 2, 0, 1),
               shrink::Error);
}

// ---- end to end ----

TEST(CudaEndToEnd, MlpTrainsToTheSameLossesOnCpuAndCuda) {
  SHRINK_SKIP_WITHOUT_GPU();
  constexpr std::int64_t kBatch = 64;
  Generator data_gen(7);
  const Tensor x = Tensor::randn({kBatch, 784}, data_gen);
  const Tensor y = Tensor::from_vector(random_labels(kBatch, 10, 8), {kBatch});
  auto train = [&](Device device) {
    Generator gen(0);  // same initial weights on both devices
    auto model = nn::build_model("mlp:784-64-10", gen);
    model->to(device);
    nn::SGD optimizer(model->named_parameters(), 0.05, 0.9);
    const Tensor xd = x.to(device), yd = y.to(device);
    std::vector<double> losses;
    for (int step = 0; step < 20; ++step) {
      optimizer.zero_grad();
      Tensor loss = cross_entropy((*model)(xd), yd);
      loss.backward();
      optimizer.step();
      losses.push_back(loss.item());
    }
    return losses;
  };
  const auto on_cpu = train(Device::cpu()), on_gpu = train(Device::cuda());
  ASSERT_EQ(on_cpu.size(), on_gpu.size());
  for (size_t i = 0; i < on_cpu.size(); ++i)
    EXPECT_NEAR(on_gpu[i], on_cpu[i], 1e-4) << "step " << i;
  EXPECT_LT(on_cpu.back(), on_cpu.front());  // it did train
}

}  // namespace
}  // namespace shrink::kernels
