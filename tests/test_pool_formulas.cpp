// The per-element pooling functions the CUDA kernels run (kernels/formulas/pool.h: one output,
// or one input element's gathered gradient, per thread), executed here on the host and
// compared with the CPU kernels (kernels/cpu/pool.cpp), so the GPU's index arithmetic and
// summation order are checked on machines without a GPU. The gathers add in the order of the
// CPU's scatters, so values, argmax and gradients are bitwise equal; adaptive forward sums in
// another order than the CPU's vectorised one and agrees to rounding. Also: the inverse
// window ranges (which outputs see an input position) against brute force.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/formulas/pool.h"
#include "tests/cpu_kernel_test.h"

namespace shrink::kernels {
namespace {

using formulas::OutputRange;

TEST(PoolFormulas, WindowsContainingMatchBruteForce) {
  for (std::int64_t in = 1; in <= 9; ++in)
    for (std::int64_t span = 1; span <= 4; ++span)
      for (std::int64_t stride = 1; stride <= 3; ++stride)
        for (std::int64_t pad = 0; pad <= span / 2; ++pad) {
          if (span > in + 2 * pad) continue;
          const std::int64_t out = (in + 2 * pad - span) / stride + 1;
          for (std::int64_t r = 0; r < in; ++r) {
            std::int64_t first = -1, end = -1;
            for (std::int64_t o = 0; o < out; ++o) {
              const std::int64_t start = o * stride - pad;
              if (start <= r && r < start + span) {
                if (first < 0) first = o;
                end = o + 1;
              }
            }
            const OutputRange got = formulas::windows_containing(r, span, stride, pad, out);
            const std::string what = "in " + std::to_string(in) + " span " + std::to_string(span) +
                                     " stride " + std::to_string(stride) + " pad " +
                                     std::to_string(pad) + " r " + std::to_string(r);
            if (first < 0) {
              EXPECT_EQ(got.first, got.end) << what;
            } else {
              EXPECT_EQ(got.first, first) << what;
              EXPECT_EQ(got.end, end) << what;
            }
          }
        }
}

TEST(PoolFormulas, AdaptiveOutputsOfAnInputMatchBruteForce) {
  for (std::int64_t in = 1; in <= 13; ++in)
    for (std::int64_t out = 1; out <= 13; ++out)
      for (std::int64_t r = 0; r < in; ++r) {
        std::int64_t first = -1, end = -1;
        for (std::int64_t o = 0; o < out; ++o)
          if (formulas::adaptive_begin(o, in, out) <= r && r < formulas::adaptive_end(o, in, out)) {
            if (first < 0) first = o;
            EXPECT_TRUE(end < 0 || end == o) << "the outputs of an input are contiguous";
            end = o + 1;
          }
        ASSERT_GE(first, 0) << "every input is in some window";
        EXPECT_EQ(formulas::adaptive_first_output(r, in, out), first) << in << " -> " << out << " r " << r;
        EXPECT_EQ(formulas::adaptive_end_output(r, in, out), end) << in << " -> " << out << " r " << r;
      }
}

Pool2dShape pool(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, std::int64_t kh,
                 std::int64_t kw, std::int64_t sh, std::int64_t sw, std::int64_t ph, std::int64_t pw) {
  Pool2dShape s;
  s.n = n, s.c = c, s.h = h, s.w = w, s.kh = kh, s.kw = kw;
  s.stride_h = sh, s.stride_w = sw, s.pad_h = ph, s.pad_w = pw;
  return s;
}

const Pool2dShape kPools[] = {
    pool(2, 3, 6, 8, 2, 2, 2, 2, 0, 0),  pool(2, 2, 7, 9, 3, 3, 2, 2, 1, 1),
    pool(1, 3, 5, 6, 3, 2, 1, 1, 0, 0),  pool(3, 2, 9, 7, 3, 3, 2, 1, 1, 1),
    pool(2, 1, 4, 5, 2, 3, 3, 2, 1, 1),  pool(1, 2, 8, 8, 5, 4, 1, 3, 2, 2),
};

template <class T>
bool same(T a, T b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// Max (on data full of ties, with NaNs) and average pooling, forward and backward, as the
// CUDA kernels compute them element by element, equal to the CPU kernel's bits.
TYPED_TEST(CpuKernels, GpuPoolFormulasMatchCpuBitwise) {
  using T = TypeParam;
  for (const Pool2dShape& s : kPools) {
    const std::int64_t oh_n = s.out_h(), ow_n = s.out_w(), planes = s.n * s.c;
    const std::int64_t in_plane = s.h * s.w, out_plane = oh_n * ow_n;
    auto x = random_vec<T>(planes * in_plane, 0, 3, 61);
    for (auto& v : x) v = std::floor(v);
    for (std::size_t i = 3; i < x.size(); i += 29) x[i] = std::numeric_limits<T>::quiet_NaN();
    const auto avg_x = random_vec<T>(planes * in_plane, -2, 2, 62);
    const auto g = random_vec<T>(planes * out_plane, -1, 1, 63);
    const std::size_t outputs = static_cast<std::size_t>(planes * out_plane);
    std::vector<T> y(outputs), y_avg(outputs), dx(x.size()), dx_avg(x.size());
    std::vector<std::int64_t> at(outputs);
    cpu().pool2d(PoolOp::Max, dtype_of<T>(), s, x.data(), y.data(), at.data());
    cpu().pool2d(PoolOp::Average, dtype_of<T>(), s, avg_x.data(), y_avg.data(), nullptr);
    cpu().pool2d_backward(PoolOp::Max, dtype_of<T>(), s, g.data(), at.data(), dx.data());
    cpu().pool2d_backward(PoolOp::Average, dtype_of<T>(), s, g.data(), nullptr, dx_avg.data());
    for (std::int64_t p = 0; p < planes; ++p) {
      for (std::int64_t oh = 0; oh < oh_n; ++oh)
        for (std::int64_t ow = 0; ow < ow_n; ++ow) {
          const std::size_t o = static_cast<std::size_t>(p * out_plane + oh * ow_n + ow);
          T v;
          std::int64_t a;
          formulas::max_pool_at(s, oh, ow, x.data() + p * in_plane, v, a);
          ASSERT_TRUE(same(v, y[o])) << "max at output " << o;
          ASSERT_EQ(a, at[o]) << "argmax at output " << o;
          ASSERT_EQ(formulas::avg_pool_at(s, oh, ow, avg_x.data() + p * in_plane), y_avg[o])
              << "average at output " << o;
        }
      for (std::int64_t r = 0; r < s.h; ++r)
        for (std::int64_t q = 0; q < s.w; ++q) {
          const std::size_t e = static_cast<std::size_t>(p * in_plane + r * s.w + q);
          const T* gp = g.data() + p * out_plane;
          ASSERT_EQ(formulas::max_pool_backward_at(s, oh_n, ow_n, r, q, gp, at.data() + p * out_plane),
                    dx[e])
              << "max backward at input " << e;
          ASSERT_EQ(formulas::avg_pool_backward_at(s, oh_n, ow_n, r, q, gp), dx_avg[e])
              << "average backward at input " << e;
        }
    }
  }
}

TYPED_TEST(CpuKernels, GpuAdaptivePoolFormulasMatchCpu) {
  using T = TypeParam;
  struct Case {
    std::int64_t planes, h, w, out_h, out_w;
  };
  const Case cases[] = {{6, 7, 5, 3, 2}, {4, 5, 7, 4, 3}, {3, 8, 8, 1, 1}, {3, 3, 4, 5, 6}};
  for (const Case& c : cases) {
    const auto x = random_vec<T>(c.planes * c.h * c.w, -2, 2, 64);
    const auto g = random_vec<T>(c.planes * c.out_h * c.out_w, -1, 1, 65);
    std::vector<T> y(static_cast<std::size_t>(c.planes * c.out_h * c.out_w)), dx(x.size());
    cpu().adaptive_avg_pool2d(dtype_of<T>(), c.planes, c.h, c.w, c.out_h, c.out_w, x.data(), y.data());
    cpu().adaptive_avg_pool2d_backward(dtype_of<T>(), c.planes, c.h, c.w, c.out_h, c.out_w,
                                       g.data(), dx.data());
    for (std::int64_t p = 0; p < c.planes; ++p) {
      for (std::int64_t oh = 0; oh < c.out_h; ++oh)
        for (std::int64_t ow = 0; ow < c.out_w; ++ow) {
          const std::size_t o = static_cast<std::size_t>((p * c.out_h + oh) * c.out_w + ow);
          const T got = formulas::adaptive_avg_at(c.h, c.w, c.out_h, c.out_w, oh, ow,
                                                  x.data() + p * c.h * c.w);
          ASSERT_NEAR(got, y[o], tol<T>() * (1 + std::abs(y[o]))) << "adaptive at output " << o;
        }
      for (std::int64_t r = 0; r < c.h; ++r)
        for (std::int64_t q = 0; q < c.w; ++q) {
          const std::size_t e = static_cast<std::size_t>((p * c.h + r) * c.w + q);
          ASSERT_EQ(formulas::adaptive_avg_backward_at(c.h, c.w, c.out_h, c.out_w, r, q,
                                                       g.data() + p * c.out_h * c.out_w),
                    dx[e])
              << "adaptive backward at input " << e;
        }
    }
  }
}

}  // namespace
}  // namespace shrink::kernels
