// The pooling kernels (CPU) against their reference loops (kernels/reference/pool.h) on odd
// shapes: max and average pooling with stride, padding and overlapping windows, forward and
// backward; max pooling's tie and NaN rules; adaptive average pooling to several sizes
// (global included); and bitwise identity of 1 and 2 threads above the OpenMP grain.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/reference/pool.h"
#include "tests/cpu_kernel_test.h"

namespace shrink::kernels {
namespace {

using testing::all_same;

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

// Odd shapes; stride < kernel overlaps windows; the last one is above the OpenMP grain.
const Pool2dShape kCases[] = {
    pool(3, 5, 7, 9, 3, 2, 2, 1, 1, 0),  pool(2, 3, 8, 8, 2, 2, 2, 2, 0, 0),
    pool(1, 2, 7, 5, 3, 3, 1, 1, 1, 1),  pool(2, 3, 9, 7, 3, 3, 2, 2, 1, 1),
    pool(1, 1, 1, 1, 1, 1, 1, 1, 0, 0),  pool(1, 3, 5, 11, 1, 3, 1, 3, 0, 1),
    pool(2, 2, 6, 13, 3, 2, 1, 1, 0, 1), pool(4, 16, 33, 35, 3, 3, 2, 2, 1, 1)};

std::int64_t in_size(const Pool2dShape& s) { return s.n * s.c * s.h * s.w; }
std::int64_t out_size(const Pool2dShape& s) { return s.n * s.c * s.out_h() * s.out_w(); }

template <class T>
struct PoolRun {
  std::vector<T> y, dx;
  std::vector<std::int64_t> argmax;
};

template <class T>
PoolRun<T> run_kernel(PoolOp op, const Pool2dShape& s, const std::vector<T>& x,
                      const std::vector<T>& dy) {
  PoolRun<T> r{std::vector<T>(static_cast<std::size_t>(out_size(s)), -7),
               std::vector<T>(x.size(), -7),
               std::vector<std::int64_t>(static_cast<std::size_t>(out_size(s)), -7)};
  cpu().pool2d(op, dtype_of<T>(), s, x.data(), r.y.data(), r.argmax.data());
  cpu().pool2d_backward(op, dtype_of<T>(), s, dy.data(), r.argmax.data(), r.dx.data());
  return r;
}

PoolRun<double> run_reference(PoolOp op, const Pool2dShape& s, const std::vector<double>& x,
                              const std::vector<double>& dy) {
  PoolRun<double> r{std::vector<double>(static_cast<std::size_t>(out_size(s))),
                    std::vector<double>(x.size()),
                    std::vector<std::int64_t>(static_cast<std::size_t>(out_size(s)))};
  reference::pool2d(op, s, x.data(), r.y.data(), r.argmax.data());
  reference::pool2d_backward(op, s, dy.data(), r.argmax.data(), r.dx.data());
  return r;
}

TYPED_TEST(CpuKernels, MaxPoolMatchesReference) {
  using T = TypeParam;
  for (const Pool2dShape& s : kCases) {
    SCOPED_TRACE(describe(s));
    const auto x = random_vec<T>(in_size(s), -3, 3, 5);
    const auto dy = random_vec<T>(out_size(s), -1, 1, 6);
    const auto got = run_kernel(PoolOp::Max, s, x, dy);
    const auto want = run_reference(PoolOp::Max, s, to_doubles(x), to_doubles(dy));
    EXPECT_EQ(got.argmax, want.argmax);
    EXPECT_TRUE(all_close("max_pool y", got.y, want.y, 0, 0));  // a copy of an input value
    EXPECT_TRUE(all_close("max_pool dx", got.dx, want.dx, tol<T>(), tol<T>()));
  }
}

TYPED_TEST(CpuKernels, AveragePoolMatchesReference) {
  using T = TypeParam;
  for (const Pool2dShape& s : kCases) {
    SCOPED_TRACE(describe(s));
    const auto x = random_vec<T>(in_size(s), -3, 3, 7);
    const auto dy = random_vec<T>(out_size(s), -1, 1, 8);
    const auto got = run_kernel(PoolOp::Average, s, x, dy);
    const auto want = run_reference(PoolOp::Average, s, to_doubles(x), to_doubles(dy));
    EXPECT_TRUE(all_close("avg_pool y", got.y, want.y, tol<T>(), tol<T>()));
    EXPECT_TRUE(all_close("avg_pool dx", got.dx, want.dx, tol<T>(), tol<T>()));
  }
}

// Values from {-1, 0, 1}: nearly every window has tied maxima; the first (row-major) wins
// and takes the whole gradient.
TYPED_TEST(CpuKernels, MaxPoolTiesGoToTheFirstMaximum) {
  using T = TypeParam;
  for (const Pool2dShape& s : kCases) {
    SCOPED_TRACE(describe(s));
    auto x = random_vec<T>(in_size(s), -1.5, 1.5, 9);
    for (T& v : x) v = std::round(v);
    const auto dy = random_vec<T>(out_size(s), -1, 1, 10);
    const auto got = run_kernel(PoolOp::Max, s, x, dy);
    const auto want = run_reference(PoolOp::Max, s, to_doubles(x), to_doubles(dy));
    EXPECT_EQ(got.argmax, want.argmax);
    EXPECT_TRUE(all_close("max_pool dx", got.dx, want.dx, tol<T>(), tol<T>()));
  }
  // All equal, 2x2 windows at stride 1 over a 2x3 plane: each window's top-left element.
  const Pool2dShape s = pool(1, 1, 2, 3, 2, 2, 1, 1, 0, 0);
  const std::vector<T> x(6, T(4)), dy = {T(1), T(10)};
  const auto got = run_kernel(PoolOp::Max, s, x, dy);
  EXPECT_EQ(got.argmax, (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(got.dx, (std::vector<T>{1, 10, 0, 0, 0, 0}));
}

// A NaN in a window is its maximum (the last NaN when there are several, as PyTorch 1.13
// returns for max_pool2d([1, nan, 5, nan], (1, 4))); windows next to it are unaffected.
TYPED_TEST(CpuKernels, MaxPoolNaNWins) {
  using T = TypeParam;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (const Pool2dShape& s : kCases) {
    SCOPED_TRACE(describe(s));
    auto x = random_vec<T>(in_size(s), -3, 3, 11);
    for (std::size_t k = 3; k < x.size(); k += 17) x[k] = nan;
    if (x.size() > 1) x[1] = -std::numeric_limits<T>::infinity();
    const auto dy = random_vec<T>(out_size(s), -1, 1, 12);
    const auto got = run_kernel(PoolOp::Max, s, x, dy);
    const auto want = run_reference(PoolOp::Max, s, to_doubles(x), to_doubles(dy));
    EXPECT_EQ(got.argmax, want.argmax);
    EXPECT_TRUE(all_close("max_pool y", got.y, want.y, 0, 0));  // NaN where both are NaN
  }
  const Pool2dShape s = pool(1, 1, 1, 4, 1, 4, 1, 1, 0, 0);
  const std::vector<T> x = {1, nan, 5, nan}, dy = {2};
  const auto got = run_kernel(PoolOp::Max, s, x, dy);
  EXPECT_TRUE(std::isnan(got.y[0]));
  EXPECT_EQ(got.argmax[0], 3);
  // An all -inf window still names an in-bounds position.
  const std::vector<T> low(4, -std::numeric_limits<T>::infinity());
  EXPECT_EQ(run_kernel(PoolOp::Max, s, low, dy).argmax[0], 0);
}

struct AdaptiveCase {
  std::int64_t planes, h, w, out_h, out_w;
};
// 7x9 -> 3x4 and 1x1, 7x5 -> 3x2, outputs larger than the input (windows repeat), and
// global pooling above the OpenMP grain.
const AdaptiveCase kAdaptive[] = {{15, 7, 9, 3, 4}, {15, 7, 9, 1, 1}, {6, 7, 5, 3, 2},
                                  {2, 3, 2, 5, 4},  {1, 1, 1, 1, 1},  {256, 16, 16, 1, 1},
                                  {96, 19, 23, 4, 3}};

TYPED_TEST(CpuKernels, AdaptiveAveragePoolMatchesReference) {
  using T = TypeParam;
  for (const AdaptiveCase& a : kAdaptive) {
    SCOPED_TRACE(std::to_string(a.planes) + " planes " + std::to_string(a.h) + "x" +
                 std::to_string(a.w) + " -> " + std::to_string(a.out_h) + "x" +
                 std::to_string(a.out_w));
    const auto x = random_vec<T>(a.planes * a.h * a.w, -3, 3, 13);
    const auto dy = random_vec<T>(a.planes * a.out_h * a.out_w, -1, 1, 14);
    std::vector<T> y(dy.size(), -7), dx(x.size(), -7);
    cpu().adaptive_avg_pool2d(dtype_of<T>(), a.planes, a.h, a.w, a.out_h, a.out_w, x.data(), y.data());
    cpu().adaptive_avg_pool2d_backward(dtype_of<T>(), a.planes, a.h, a.w, a.out_h, a.out_w,
                                       dy.data(), dx.data());
    std::vector<double> want_y(y.size()), want_dx(x.size());
    reference::adaptive_avg_pool2d(a.planes, a.h, a.w, a.out_h, a.out_w, to_doubles(x).data(),
                                   want_y.data());
    reference::adaptive_avg_pool2d_backward(a.planes, a.h, a.w, a.out_h, a.out_w,
                                            to_doubles(dy).data(), want_dx.data());
    EXPECT_TRUE(all_close("adaptive_avg_pool2d y", y, want_y, tol<T>(), tol<T>()));
    EXPECT_TRUE(all_close("adaptive_avg_pool2d dx", dx, want_dx, tol<T>(), tol<T>()));
  }
}

template <class T>
struct ThreadRuns {
  PoolRun<T> max, average;
  std::vector<T> adaptive_y, adaptive_dx;
};

template <class T>
ThreadRuns<T> run_all(int threads, const Pool2dShape& s, const std::vector<T>& x,
                      const std::vector<T>& dy) {
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  ThreadRuns<T> r{run_kernel(PoolOp::Max, s, x, dy), run_kernel(PoolOp::Average, s, x, dy),
                  std::vector<T>(static_cast<std::size_t>(s.n * s.c * 12)), std::vector<T>(x.size())};
  cpu().adaptive_avg_pool2d(dtype_of<T>(), s.n * s.c, s.h, s.w, 3, 4, x.data(), r.adaptive_y.data());
  cpu().adaptive_avg_pool2d_backward(dtype_of<T>(), s.n * s.c, s.h, s.w, 3, 4, dy.data(),
                                     r.adaptive_dx.data());
  omp_set_num_threads(before);
  return r;
}

TYPED_TEST(CpuKernels, PoolingIsIndependentOfTheThreadCount) {
  using T = TypeParam;
  const Pool2dShape s = pool(4, 16, 33, 35, 3, 3, 2, 2, 1, 1);  // overlapping, above the grain
  static_assert(4 * 16 * 33 * 35 > cpu::kParallelGrain);
  const auto x = random_vec<T>(in_size(s), -3, 3, 15);
  const auto dy = random_vec<T>(std::max(out_size(s), s.n * s.c * 12), -1, 1, 16);
  const auto one = run_all(1, s, x, dy), two = run_all(2, s, x, dy);
  EXPECT_TRUE(all_same("max y", one.max.y, two.max.y));
  EXPECT_EQ(one.max.argmax, two.max.argmax);
  EXPECT_TRUE(all_same("max dx", one.max.dx, two.max.dx));
  EXPECT_TRUE(all_same("avg y", one.average.y, two.average.y));
  EXPECT_TRUE(all_same("avg dx", one.average.dx, two.average.dx));
  EXPECT_TRUE(all_same("adaptive y", one.adaptive_y, two.adaptive_y));
  EXPECT_TRUE(all_same("adaptive dx", one.adaptive_dx, two.adaptive_dx));
}

TEST(PoolKernel, MaxWithoutArgmaxAndInt64AreRefusedByName) {
  const Pool2dShape s = pool(1, 1, 2, 2, 2, 2, 2, 2, 0, 0);
  std::vector<float> x(4, 1), y(1);
  EXPECT_NE(testing::error_of([&] { cpu().pool2d(PoolOp::Max, DType::Float32, s, x.data(), y.data(), nullptr); })
                .find("pool2d"),
            std::string::npos);
  std::vector<std::int64_t> xi(4, 1), yi(1), at(1);
  EXPECT_NE(testing::error_of([&] { cpu().pool2d(PoolOp::Max, DType::Int64, s, xi.data(), yi.data(), at.data()); })
                .find("pool2d"),
            std::string::npos);
}

}  // namespace
}  // namespace shrink::kernels
