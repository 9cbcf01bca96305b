// The batch-norm kernels (CPU) against their reference loops (kernels/reference/batch_norm.h)
// on odd shapes: training and evaluation, with and without gamma / beta and running
// statistics, the forward, the saved statistics, the running update and the gradients; the
// one-value-per-channel edge; and bitwise identity of 1 and 2 threads above the OpenMP grain.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference/batch_norm.h"
#include "tests/cpu_kernel_test.h"

namespace shrink::kernels {
namespace {

using testing::all_same;

struct Case {
  std::int64_t n, c, hw;
};
// (4, 3, 1) is a 2-D (n, c) input; the last is above the OpenMP grain.
const Case kCases[] = {{3, 5, 63}, {4, 3, 1}, {7, 2, 5}, {2, 1, 9}, {1, 6, 11}, {8, 17, 301}};

std::string describe(const Case& s, bool training, bool affine, bool running) {
  return "n=" + std::to_string(s.n) + " c=" + std::to_string(s.c) + " hw=" + std::to_string(s.hw) +
         (training ? " training" : " eval") + (affine ? " affine" : " no-affine") +
         (running ? " running" : " no-running");
}

template <class T>
T* or_null(std::vector<T>& v, bool use) { return use ? v.data() : nullptr; }
template <class T>
const T* or_null(const std::vector<T>& v, bool use) { return use ? v.data() : nullptr; }

// Everything one configuration produces, on the kernel (T) or the reference (double).
template <class T>
struct BnRun {
  std::vector<T> y, save_mean, save_invstd, running_mean, running_var, dx, dgamma, dbeta;
};

template <class T>
BnRun<T> inputs_for(const Case& s, std::uint64_t seed) {
  const std::size_t c = static_cast<std::size_t>(s.c);
  BnRun<T> r;
  r.y.assign(static_cast<std::size_t>(s.n * s.c * s.hw), T(-7));
  r.save_mean.assign(c, T(-7));
  r.save_invstd.assign(c, T(-7));
  r.running_mean = random_vec<T>(s.c, -1, 1, seed);
  r.running_var = random_vec<T>(s.c, 0.5, 2, seed + 1);
  r.dx.assign(r.y.size(), T(-7));
  r.dgamma.assign(c, T(-7));
  r.dbeta.assign(c, T(-7));
  return r;
}

template <class T>
BnRun<double> as_doubles(const BnRun<T>& r) {
  return {to_doubles(r.y),           to_doubles(r.save_mean), to_doubles(r.save_invstd),
          to_doubles(r.running_mean), to_doubles(r.running_var), to_doubles(r.dx),
          to_doubles(r.dgamma),      to_doubles(r.dbeta)};
}

TYPED_TEST(CpuKernels, BatchNormMatchesReference) {
  using T = TypeParam;
  const double momentum = 0.1, eps = 1e-5;
  for (const Case& s : kCases)
    for (bool training : {true, false})
      for (bool affine : {true, false})
        for (bool running : {true, false}) {
          if (!training && !running) continue;  // evaluation normalises with running statistics
          SCOPED_TRACE(describe(s, training, affine, running));
          // A mean far from zero: the two-pass variance must not cancel.
          const auto x = random_vec<T>(s.n * s.c * s.hw, 2, 5, 21);
          const auto dy = random_vec<T>(s.n * s.c * s.hw, -1, 1, 22);
          const auto gamma = random_vec<T>(s.c, 0.5, 1.5, 23), beta = random_vec<T>(s.c, -1, 1, 24);
          BnRun<T> got = inputs_for<T>(s, 25);
          BnRun<double> want = as_doubles(got);
          cpu().batch_norm(dtype_of<T>(), s.n, s.c, s.hw, training, momentum, eps, x.data(),
                           or_null(gamma, affine), or_null(beta, affine),
                           or_null(got.running_mean, running), or_null(got.running_var, running),
                           got.save_mean.data(), got.save_invstd.data(), got.y.data());
          const auto xd = to_doubles(x), gd = to_doubles(gamma), bd = to_doubles(beta);
          reference::batch_norm(s.n, s.c, s.hw, training, momentum, eps, xd.data(),
                                or_null(gd, affine), or_null(bd, affine),
                                or_null(want.running_mean, running), or_null(want.running_var, running),
                                want.save_mean.data(), want.save_invstd.data(), want.y.data());
          EXPECT_TRUE(all_close("y", got.y, want.y, tol<T>(), tol<T>()));
          EXPECT_TRUE(all_close("save_mean", got.save_mean, want.save_mean, tol<T>(), tol<T>()));
          EXPECT_TRUE(all_close("save_invstd", got.save_invstd, want.save_invstd, tol<T>(), tol<T>()));
          EXPECT_TRUE(all_close("running_mean", got.running_mean, want.running_mean, tol<T>(), tol<T>()));
          EXPECT_TRUE(all_close("running_var", got.running_var, want.running_var, tol<T>(), tol<T>()));

          // Backward with the statistics the forward used.
          const std::vector<T>& mean = training ? got.save_mean : got.running_mean;
          std::vector<T> invstd = got.save_invstd;
          if (!training)
            for (std::size_t ch = 0; ch < invstd.size(); ++ch)
              invstd[ch] = static_cast<T>(1 / std::sqrt(static_cast<double>(got.running_var[ch]) + eps));
          for (bool want_params : {true, false}) {
            cpu().batch_norm_backward(dtype_of<T>(), s.n, s.c, s.hw, training, x.data(), dy.data(),
                                      or_null(gamma, affine), mean.data(), invstd.data(),
                                      got.dx.data(), or_null(got.dgamma, want_params),
                                      or_null(got.dbeta, want_params));
            const auto md = to_doubles(mean), id = to_doubles(invstd);
            reference::batch_norm_backward(s.n, s.c, s.hw, training, xd.data(),
                                           to_doubles(dy).data(), or_null(gd, affine), md.data(),
                                           id.data(), want.dx.data(), want.dgamma.data(),
                                           want.dbeta.data());
            const double gtol = std::is_same_v<T, float> ? 2e-5 : 1e-11;
            EXPECT_TRUE(all_close("dx", got.dx, want.dx, gtol, gtol));
            if (want_params) {
              EXPECT_TRUE(all_close("dgamma", got.dgamma, want.dgamma, gtol, gtol));
              EXPECT_TRUE(all_close("dbeta", got.dbeta, want.dbeta, gtol, gtol));
            }
          }
        }
}

// One value per channel (n hw == 1): the batch variance is 0, so y = beta; the unbiased
// variance is 0 / 0 and the running variance becomes NaN, as in PyTorch's kernels (its
// functional layer, like core's batch_norm, refuses training on such a batch).
TYPED_TEST(CpuKernels, BatchNormOneValuePerChannel) {
  using T = TypeParam;
  const std::vector<T> x = {3, -2}, gamma = {2, 3}, beta = {0.5, -0.25};
  std::vector<T> rm = {1, 1}, rv = {1, 1}, mean(2), invstd(2), y(2);
  cpu().batch_norm(dtype_of<T>(), 1, 2, 1, true, 0.1, 1e-5, x.data(), gamma.data(), beta.data(),
                   rm.data(), rv.data(), mean.data(), invstd.data(), y.data());
  EXPECT_EQ(y, beta);
  EXPECT_EQ(mean, x);
  EXPECT_NEAR(static_cast<double>(invstd[0]), 1 / std::sqrt(1e-5), 1e-6 * (1 / std::sqrt(1e-5)));
  EXPECT_NEAR(static_cast<double>(rm[0]), 0.9 + 0.1 * 3, 1e-6);
  EXPECT_TRUE(std::isnan(rv[0]) && std::isnan(rv[1]));
}

// Momentum as PyTorch: new = (1 - momentum) old + momentum batch, unbiased variance.
TYPED_TEST(CpuKernels, BatchNormRunningUpdateByHand) {
  using T = TypeParam;
  const std::vector<T> x = {1, 2, 3, 6};  // (n 2, c 1, hw 2): mean 3, sum of squares 14
  std::vector<T> rm = {1}, rv = {2}, mean(1), invstd(1), y(4);
  cpu().batch_norm(dtype_of<T>(), 2, 1, 2, true, 0.25, 1e-5, x.data(), nullptr, nullptr,
                   rm.data(), rv.data(), mean.data(), invstd.data(), y.data());
  EXPECT_NEAR(static_cast<double>(rm[0]), 0.75 * 1 + 0.25 * 3, 1e-6);
  EXPECT_NEAR(static_cast<double>(rv[0]), 0.75 * 2 + 0.25 * (14.0 / 3), 1e-6);
  EXPECT_NEAR(static_cast<double>(invstd[0]), 1 / std::sqrt(14.0 / 4 + 1e-5), 1e-6);
}

TYPED_TEST(CpuKernels, BatchNormIsIndependentOfTheThreadCount) {
  using T = TypeParam;
  const Case s{8, 17, 301};
  static_assert(8 * 17 * 301 > cpu::kParallelGrain);
  const auto x = random_vec<T>(s.n * s.c * s.hw, -2, 2, 31);
  const auto dy = random_vec<T>(s.n * s.c * s.hw, -1, 1, 32);
  const auto gamma = random_vec<T>(s.c, 0.5, 1.5, 33), beta = random_vec<T>(s.c, -1, 1, 34);
  auto run = [&](int threads) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    BnRun<T> r = inputs_for<T>(s, 35);
    cpu().batch_norm(dtype_of<T>(), s.n, s.c, s.hw, true, 0.1, 1e-5, x.data(), gamma.data(),
                     beta.data(), r.running_mean.data(), r.running_var.data(), r.save_mean.data(),
                     r.save_invstd.data(), r.y.data());
    cpu().batch_norm_backward(dtype_of<T>(), s.n, s.c, s.hw, true, x.data(), dy.data(),
                              gamma.data(), r.save_mean.data(), r.save_invstd.data(), r.dx.data(),
                              r.dgamma.data(), r.dbeta.data());
    omp_set_num_threads(before);
    return r;
  };
  const BnRun<T> one = run(1), two = run(2);
  EXPECT_TRUE(all_same("y", one.y, two.y));
  EXPECT_TRUE(all_same("save_invstd", one.save_invstd, two.save_invstd));
  EXPECT_TRUE(all_same("running_var", one.running_var, two.running_var));
  EXPECT_TRUE(all_same("dx", one.dx, two.dx));
  EXPECT_TRUE(all_same("dgamma", one.dgamma, two.dgamma));
  EXPECT_TRUE(all_same("dbeta", one.dbeta, two.dbeta));
}

TEST(BatchNormKernel, EvaluationWithoutRunningStatisticsAndInt64AreRefusedByName) {
  std::vector<float> x(4, 1), y(4);
  EXPECT_NE(testing::error_of([&] {
              cpu().batch_norm(DType::Float32, 2, 1, 2, false, 0.1, 1e-5, x.data(), nullptr, nullptr,
                               nullptr, nullptr, nullptr, nullptr, y.data());
            }).find("batch_norm"),
            std::string::npos);
  std::vector<std::int64_t> xi(4, 1), yi(4), s(1);
  EXPECT_NE(testing::error_of([&] {
              cpu().batch_norm(DType::Int64, 2, 1, 2, true, 0.1, 1e-5, xi.data(), nullptr, nullptr,
                               nullptr, nullptr, s.data(), s.data(), yi.data());
            }).find("batch_norm"),
            std::string::npos);
}

}  // namespace
}  // namespace shrink::kernels
