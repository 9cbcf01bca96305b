// The unit_norm kernel (CPU) against its reference loop on odd shapes, on both code paths
// (units contiguous: inner == 1; units strided: inner > 1) and above the OpenMP grain, and
// core's unit_norms op on every axis, plus its errors. The CUDA twin is
// tests/test_kernels_norms_cuda.cpp.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "kernels/reference/norms.h"
#include "tests/cpu_kernel_test.h"

namespace shrink::kernels {
namespace {

struct Case {
  std::int64_t outer, units, inner;
};
// Odd sizes; 1 x 257 x 1 and 3 x 1001 x 1 cross the 256-unit column block; the last two are
// above the OpenMP grain on each path; inner 1, 2, 3 and 5 exercise the 4-way unroll's tail.
const Case kCases[] = {{1, 1, 1},   {1, 7, 1},    {5, 3, 1},    {1, 257, 1},   {3, 1001, 1},
                       {1, 13, 5},  {4, 9, 3},    {7, 1, 11},   {2, 5, 2},     {3, 17, 33},
                       {37, 1109, 1}, {1, 97, 785}};

TYPED_TEST(CpuKernels, UnitNormMatchesReference) {
  using T = TypeParam;
  for (const Case& c : kCases)
    for (int p : {1, 2}) {
      SCOPED_TRACE("outer=" + std::to_string(c.outer) + " units=" + std::to_string(c.units) +
                   " inner=" + std::to_string(c.inner) + " p=" + std::to_string(p));
      const auto x = random_vec<T>(c.outer * c.units * c.inner, -3, 3, 7);
      std::vector<double> got(static_cast<std::size_t>(c.units), -1), want(got.size());
      cpu().unit_norm(dtype_of<T>(), p, c.outer, c.units, c.inner, x.data(), got.data());
      reference::unit_norm(p, c.outer, c.units, c.inner, to_doubles(x).data(), want.data());
      // Summed in double whatever T is: only the order of the additions differs.
      EXPECT_TRUE(all_close("unit_norm", got, want, 0, 1e-13));
    }
}

TYPED_TEST(CpuKernels, UnitNormIsIndependentOfTheThreadCount) {
  using T = TypeParam;
  const Case c{3, 5003, 7};
  const auto x = random_vec<T>(c.outer * c.units * c.inner, -1, 1, 11);
  std::vector<double> one(static_cast<std::size_t>(c.units)), two(one.size());
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  cpu().unit_norm(dtype_of<T>(), 2, c.outer, c.units, c.inner, x.data(), one.data());
  omp_set_num_threads(2);
  cpu().unit_norm(dtype_of<T>(), 2, c.outer, c.units, c.inner, x.data(), two.data());
  omp_set_num_threads(before);
  EXPECT_EQ(one, two);
}

TEST(UnitNormKernel, RejectsOtherPAndInt64ByName) {
  std::vector<float> x = {1, 2};
  std::vector<double> out(2);
  try {
    cpu().unit_norm(DType::Float32, 3, 1, 2, 1, x.data(), out.data());
    FAIL() << "p = 3 did not throw";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("unit_norm"), std::string::npos) << e.what();
  }
  std::vector<std::int64_t> xi = {1, 2};
  try {
    cpu().unit_norm(DType::Int64, 1, 1, 2, 1, xi.data(), out.data());
    FAIL() << "int64 data did not throw";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("unit_norm"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace shrink::kernels

namespace shrink {
namespace {

TEST(UnitNorms, EveryAxisOfA4dTensorMatchesTheLoop) {
  const Shape shape = {3, 4, 5, 2};
  const auto v = testing::random_vec<float>(numel(shape), -2, 2, 3);
  const Tensor x = Tensor::from_vector(v, shape);
  for (std::int64_t axis = 0; axis < 4; ++axis)
    for (int p : {1, 2}) {
      const Tensor n = unit_norms(x, axis, p);
      ASSERT_EQ(n.dtype(), DType::Float64);
      ASSERT_EQ(n.shape(), (Shape{shape[static_cast<std::size_t>(axis)]}));
      const auto got = n.to_vector<double>();
      for (std::int64_t u = 0; u < shape[static_cast<std::size_t>(axis)]; ++u) {
        double total = 0;
        for (std::int64_t k = 0; k < numel(shape); ++k) {
          // the index of element k along `axis`
          std::int64_t rest = k, at = 0;
          for (std::int64_t a = 3; a >= 0; --a) {
            const std::int64_t i = rest % shape[static_cast<std::size_t>(a)];
            rest /= shape[static_cast<std::size_t>(a)];
            if (a == axis) at = i;
          }
          if (at != u) continue;
          const double e = v[static_cast<std::size_t>(k)];
          total += p == 1 ? std::fabs(e) : e * e;
        }
        const double want = p == 1 ? total : std::sqrt(total);
        EXPECT_NEAR(got[static_cast<std::size_t>(u)], want, 1e-12 * (1 + want))
            << "axis " << axis << " p " << p << " unit " << u;
      }
    }
  EXPECT_EQ(unit_norms(x, -1, 1).numel(), 2);  // negative axes count from the end
}

TEST(UnitNorms, ErrorsNameTheOp) {
  const Tensor x = Tensor::ones({2, 3});
  for (const auto& bad : {std::function<void()>([&] { unit_norms(x, 0, 3); }),
                          std::function<void()>([&] { unit_norms(x, 2, 1); }),
                          std::function<void()>([&] {
                            unit_norms(Tensor::from_vector(std::vector<std::int64_t>{1, 2}, {2}), 0, 1);
                          })}) {
    try {
      bad();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("unit_norms"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace shrink
