// The CUDA pooling and batch-norm kernels against their CPU twins (kernels/cpu/pool.cpp and
// batch_norm.cpp, themselves checked against the reference loops in test_kernels_pool.cpp
// and test_kernels_batch_norm.cpp), float32 and float64:
//   max pooling   values and argmax exactly equal (no arithmetic: the same window order and
//                 rule, kernels/formulas/pool.h), on data full of ties and with NaNs; backward
//   average       with padding counted, stride, overlapping windows; backward
//   adaptive      to sizes that do not divide the input (overlapping windows), global, larger
//   batch norm    training forward (y, saved mean / invstd, running statistics, with and
//                 without gamma / beta / running statistics), evaluation forward, backward in
//                 both modes with and without dgamma / dbeta; channels past the grid cap
// Bounds: eps_T (1 + |cpu|) with eps_T = 1e-5 for float32 and 1e-11 for float64 (the GPU sums
// statistics in double in another order; pooling sums in the CPU's order), and for dgamma /
// dbeta eps_T times the channel's sum of |dy| (1 + |xhat|). Every test skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "tests/cuda_kernel_test.h"

namespace shrink::kernels {
namespace {

using testing::random_vec;

template <class T> constexpr double eps() { return std::is_same_v<T, float> ? 1e-5 : 1e-11; }

template <class T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  expect_within(got, want, magnitude_bound(want), eps<T>(), what);
}

// Equal values (NaN equal to NaN), element by element.
template <class T>
void expect_same(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_TRUE((std::isnan(got[i]) && std::isnan(want[i])) || got[i] == want[i])
        << what << " at " << i << ": got " << got[i] << ", want " << want[i];
}

Pool2dShape pool(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t kh,
                 std::int64_t kw, std::int64_t sh, std::int64_t sw, std::int64_t ph, std::int64_t pw) {
  Pool2dShape s;
  s.n = n, s.c = c, s.h = h, s.w = w, s.kh = kh, s.kw = kw;
  s.stride_h = sh, s.stride_w = sw, s.pad_h = ph, s.pad_w = pw;
  return s;
}

std::string describe(const Pool2dShape& s) {
  return "x (" + std::to_string(s.n) + ", " + std::to_string(s.c) + ", " + std::to_string(s.h) +
         ", " + std::to_string(s.w) + ") kernel " + std::to_string(s.kh) + "x" +
         std::to_string(s.kw) + " stride " + std::to_string(s.stride_h) + "x" +
         std::to_string(s.stride_w) + " pad " + std::to_string(s.pad_h) + "x" +
         std::to_string(s.pad_w);
}

const Pool2dShape kPools[] = {
    pool(2, 3, 6, 8, 2, 2, 2, 2, 0, 0),    // ResNet / LeNet 2x2
    pool(2, 2, 7, 9, 3, 3, 2, 2, 1, 1),    // ResNet stem 3x3 s2 p1
    pool(1, 3, 5, 6, 3, 2, 1, 1, 0, 0),    // overlapping windows
    pool(3, 2, 9, 7, 3, 3, 2, 1, 1, 1),    // padding, mixed strides
    pool(2, 1, 4, 5, 2, 3, 3, 2, 1, 1),    // stride above the kernel in h
    pool(4, 16, 33, 31, 3, 3, 2, 2, 1, 1), // larger: many blocks
};

template <class T>
class CudaPoolBn : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CudaPoolBn, FloatTypes);

// Values from {0, 1, 2}: most windows hold ties, so "first maximum wins" is exercised; a few
// NaNs test "NaN wins, the last one".
TYPED_TEST(CudaPoolBn, MaxPoolMatchesCpuWithTiesAndNaN) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (const Pool2dShape& s : kPools) {
    SCOPED_TRACE(describe(s));
    auto x = random_vec<T>(s.n * s.c * s.h * s.w, 0, 3, 21);
    for (auto& v : x) v = std::floor(v);
    for (std::size_t i = 5; i < x.size(); i += 37) x[i] = std::numeric_limits<T>::quiet_NaN();
    const std::size_t outputs = static_cast<std::size_t>(s.n * s.c * s.out_h() * s.out_w());
    std::vector<T> want(outputs);
    std::vector<std::int64_t> want_at(outputs);
    cpu().pool2d(PoolOp::Max, dt<T>(), s, x.data(), want.data(), want_at.data());
    DeviceVec<T> dx(x), dy(outputs);
    DeviceVec<std::int64_t> dat(outputs);
    gpu().pool2d(PoolOp::Max, dt<T>(), s, dx.get(), dy.get(), dat.get());
    expect_same(dy.host(), want, "max forward");
    EXPECT_EQ(dat.host(), want_at) << "argmax";

    const auto g = random_vec<T>(static_cast<std::int64_t>(outputs), -1, 1, 22);
    std::vector<T> want_dx(x.size());
    cpu().pool2d_backward(PoolOp::Max, dt<T>(), s, g.data(), want_at.data(), want_dx.data());
    DeviceVec<T> dg(g), ddx(x.size());
    gpu().pool2d_backward(PoolOp::Max, dt<T>(), s, dg.get(), dat.get(), ddx.get());
    expect_close(ddx.host(), want_dx, "max backward");
  }
}

TYPED_TEST(CudaPoolBn, AvgPoolMatchesCpuWithPadding) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (const Pool2dShape& s : kPools) {
    SCOPED_TRACE(describe(s));
    const auto x = random_vec<T>(s.n * s.c * s.h * s.w, -2, 2, 23);
    const std::size_t outputs = static_cast<std::size_t>(s.n * s.c * s.out_h() * s.out_w());
    std::vector<T> want(outputs);
    cpu().pool2d(PoolOp::Average, dt<T>(), s, x.data(), want.data(), nullptr);
    DeviceVec<T> dx(x), dy(outputs);
    gpu().pool2d(PoolOp::Average, dt<T>(), s, dx.get(), dy.get(), nullptr);
    expect_close(dy.host(), want, "average forward");

    const auto g = random_vec<T>(static_cast<std::int64_t>(outputs), -1, 1, 24);
    std::vector<T> want_dx(x.size());
    cpu().pool2d_backward(PoolOp::Average, dt<T>(), s, g.data(), nullptr, want_dx.data());
    DeviceVec<T> dg(g), ddx(x.size());
    gpu().pool2d_backward(PoolOp::Average, dt<T>(), s, dg.get(), nullptr, ddx.get());
    expect_close(ddx.host(), want_dx, "average backward");
  }
}

TYPED_TEST(CudaPoolBn, AdaptiveAvgPoolMatchesCpuOnNonDivisibleSizes) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  struct Case {
    std::int64_t planes, h, w, out_h, out_w;
  };
  // 7 -> 3 and 5 -> 2 overlap windows; 1x1 is global pooling; 3 -> 5 repeats inputs.
  const Case cases[] = {{6, 7, 5, 3, 2}, {4, 5, 7, 4, 3}, {10, 8, 8, 1, 1},
                        {3, 3, 4, 5, 6}, {2, 13, 11, 13, 11}, {300, 9, 9, 2, 4}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.planes) + " planes " + std::to_string(c.h) + "x" +
                 std::to_string(c.w) + " -> " + std::to_string(c.out_h) + "x" + std::to_string(c.out_w));
    const auto x = random_vec<T>(c.planes * c.h * c.w, -2, 2, 25);
    const std::size_t outputs = static_cast<std::size_t>(c.planes * c.out_h * c.out_w);
    std::vector<T> want(outputs);
    cpu().adaptive_avg_pool2d(dt<T>(), c.planes, c.h, c.w, c.out_h, c.out_w, x.data(), want.data());
    DeviceVec<T> dx(x), dy(outputs);
    gpu().adaptive_avg_pool2d(dt<T>(), c.planes, c.h, c.w, c.out_h, c.out_w, dx.get(), dy.get());
    expect_close(dy.host(), want, "adaptive forward");

    const auto g = random_vec<T>(static_cast<std::int64_t>(outputs), -1, 1, 26);
    std::vector<T> want_dx(x.size());
    cpu().adaptive_avg_pool2d_backward(dt<T>(), c.planes, c.h, c.w, c.out_h, c.out_w, g.data(),
                                       want_dx.data());
    DeviceVec<T> dg(g), ddx(x.size());
    gpu().adaptive_avg_pool2d_backward(dt<T>(), c.planes, c.h, c.w, c.out_h, c.out_w, dg.get(),
                                       ddx.get());
    expect_close(ddx.host(), want_dx, "adaptive backward");
  }
}

struct BnCase {
  std::int64_t n, c, hw;
  double offset;  // added to x: |mean| >> std tests the two-pass variance
};
// Odd sizes; hw 1 (BatchNorm1d-like); one value per channel (unbiased variance 0 / 0);
// channels longer than a block (several loop turns); more channels than the grid's 65535
// blocks (the channel loop); a large mean.
const BnCase kBn[] = {{4, 3, 25, 0},   {2, 5, 1, 0},     {1, 3, 1, 0},   {3, 7, 1000, 0},
                      {8, 2, 4097, 0}, {2, 66000, 2, 0}, {5, 4, 9, 1000}};

std::string describe(const BnCase& b) {
  return "(n, c, hw) = (" + std::to_string(b.n) + ", " + std::to_string(b.c) + ", " +
         std::to_string(b.hw) + "), offset " + std::to_string(b.offset);
}

template <class T>
std::vector<T> bn_input(const BnCase& b, std::uint64_t seed) {
  auto x = random_vec<T>(b.n * b.c * b.hw, -2, 2, seed);
  for (auto& v : x) v = static_cast<T>(v + b.offset);
  return x;
}

TYPED_TEST(CudaPoolBn, BatchNormTrainingForwardMatchesCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  const double momentum = 0.1, eps_bn = 1e-5;
  for (const BnCase& b : kBn)
    for (bool affine : {false, true})
      for (bool running : {false, true}) {
        SCOPED_TRACE(describe(b) + (affine ? " gamma/beta" : " no gamma/beta") +
                     (running ? " running stats" : " no running stats"));
        const auto x = bn_input<T>(b, 31);
        const auto gamma = random_vec<T>(b.c, 0.5, 1.5, 32), beta = random_vec<T>(b.c, -1, 1, 33);
        const auto rm0 = random_vec<T>(b.c, -1, 1, 34), rv0 = random_vec<T>(b.c, 0.5, 2, 35);
        const std::size_t c = static_cast<std::size_t>(b.c);
        std::vector<T> y(x.size()), sm(c), si(c), rm = rm0, rv = rv0;
        cpu().batch_norm(dt<T>(), b.n, b.c, b.hw, true, momentum, eps_bn, x.data(),
                         affine ? gamma.data() : nullptr, affine ? beta.data() : nullptr,
                         running ? rm.data() : nullptr, running ? rv.data() : nullptr, sm.data(),
                         si.data(), y.data());
        DeviceVec<T> dx(x), dgamma(gamma), dbeta(beta), drm(rm0), drv(rv0), dy(x.size()), dsm(c),
            dsi(c);
        gpu().batch_norm(dt<T>(), b.n, b.c, b.hw, true, momentum, eps_bn, dx.get(),
                         affine ? dgamma.get() : nullptr, affine ? dbeta.get() : nullptr,
                         running ? drm.get() : nullptr, running ? drv.get() : nullptr, dsm.get(),
                         dsi.get(), dy.get());
        expect_close(dy.host(), y, "y");
        expect_close(dsm.host(), sm, "save_mean");
        expect_close(dsi.host(), si, "save_invstd");
        if (running) {
          expect_close(drm.host(), rm, "running_mean");
          expect_close(drv.host(), rv, "running_var");  // NaN where n hw == 1, on both
        } else {
          expect_same(drm.host(), rm0, "running_mean untouched");
          expect_same(drv.host(), rv0, "running_var untouched");
        }
      }
}

TYPED_TEST(CudaPoolBn, BatchNormEvalForwardMatchesCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (const BnCase& b : kBn) {
    SCOPED_TRACE(describe(b));
    const auto x = bn_input<T>(b, 41);
    const auto gamma = random_vec<T>(b.c, 0.5, 1.5, 42), beta = random_vec<T>(b.c, -1, 1, 43);
    auto rm = random_vec<T>(b.c, -1, 1, 44);
    for (auto& v : rm) v = static_cast<T>(v + b.offset);
    const auto rv = random_vec<T>(b.c, 0.5, 2, 45);
    std::vector<T> y(x.size());
    cpu().batch_norm(dt<T>(), b.n, b.c, b.hw, false, 0.1, 1e-5, x.data(), gamma.data(),
                     beta.data(), const_cast<T*>(rm.data()), const_cast<T*>(rv.data()), nullptr,
                     nullptr, y.data());
    DeviceVec<T> dx(x), dgamma(gamma), dbeta(beta), drm(rm), drv(rv), dy(x.size());
    gpu().batch_norm(dt<T>(), b.n, b.c, b.hw, false, 0.1, 1e-5, dx.get(), dgamma.get(),
                     dbeta.get(), drm.get(), drv.get(), nullptr, nullptr, dy.get());
    expect_close(dy.host(), y, "eval y");
    expect_same(drm.host(), rm, "running_mean untouched in eval");
    expect_same(drv.host(), rv, "running_var untouched in eval");
  }
}

TYPED_TEST(CudaPoolBn, BatchNormBackwardMatchesCpuInBothModes) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (const BnCase& b : kBn)
    for (bool training : {true, false})
      for (bool param_grads : {true, false}) {
        SCOPED_TRACE(describe(b) + (training ? " training" : " eval") +
                     (param_grads ? " with dgamma/dbeta" : " dx only"));
        const std::size_t c = static_cast<std::size_t>(b.c);
        const auto x = bn_input<T>(b, 51);
        const auto g = random_vec<T>(b.n * b.c * b.hw, -1, 1, 52);
        const auto gamma = random_vec<T>(b.c, 0.5, 1.5, 53);
        // The statistics the forward used: the batch's (from the CPU kernel) or running ones.
        std::vector<T> mean(c), invstd(c), y(x.size());
        if (training) {
          cpu().batch_norm(dt<T>(), b.n, b.c, b.hw, true, 0.1, 1e-5, x.data(), nullptr, nullptr,
                           nullptr, nullptr, mean.data(), invstd.data(), y.data());
        } else {
          mean = random_vec<T>(b.c, -1, 1, 54);
          for (auto& v : mean) v = static_cast<T>(v + b.offset);
          for (auto& v : invstd) v = static_cast<T>(1 / std::sqrt(1.3 + 1e-5));
        }
        std::vector<T> dx(x.size()), dgamma(c), dbeta(c);
        cpu().batch_norm_backward(dt<T>(), b.n, b.c, b.hw, training, x.data(), g.data(),
                                  gamma.data(), mean.data(), invstd.data(), dx.data(),
                                  param_grads ? dgamma.data() : nullptr,
                                  param_grads ? dbeta.data() : nullptr);
        DeviceVec<T> d_x(x), d_g(g), d_gamma(gamma), d_mean(mean), d_invstd(invstd),
            d_dx(x.size()), d_dgamma(c), d_dbeta(c);
        gpu().batch_norm_backward(dt<T>(), b.n, b.c, b.hw, training, d_x.get(), d_g.get(),
                                  d_gamma.get(), d_mean.get(), d_invstd.get(), d_dx.get(),
                                  param_grads ? d_dgamma.get() : nullptr,
                                  param_grads ? d_dbeta.get() : nullptr);
        expect_close(d_dx.host(), dx, "dx");
        if (!param_grads) continue;
        std::vector<double> bound(c, 1e-30);
        for (std::int64_t i = 0; i < b.n; ++i)
          for (std::int64_t ch = 0; ch < b.c; ++ch)
            for (std::int64_t k = 0; k < b.hw; ++k) {
              const std::size_t e = static_cast<std::size_t>((i * b.c + ch) * b.hw + k);
              const double xhat = (double(x[e]) - double(mean[ch])) * double(invstd[ch]);
              bound[static_cast<std::size_t>(ch)] += std::abs(double(g[e])) * (1 + std::abs(xhat));
            }
        expect_within(d_dgamma.host(), dgamma, bound, eps<T>(), "dgamma");
        expect_within(d_dbeta.host(), dbeta, bound, eps<T>(), "dbeta");
      }
}

}  // namespace
}  // namespace shrink::kernels
