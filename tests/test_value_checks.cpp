// find_nonfinite (CPU kernel) against its reference loop on odd sizes, with bad values in
// every position class (first element, a chunk edge, the tail, several bad values), and the
// first_nonfinite / nonfinite_str ops that training and checkpoint loading report with.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "core/ops.h"
#include "kernels/reference/reduce.h"
#include "tests/cpu_kernel_test.h"

namespace shrink::kernels {
namespace {

template <class T>
void expect_first_nonfinite_matches(const std::vector<T>& x) {
  const auto n = static_cast<std::int64_t>(x.size());
  std::int64_t at = -7;
  cpu().find_nonfinite(dtype_of<T>(), n, x.data(), &at);
  EXPECT_EQ(at, reference::first_nonfinite(n, x.data())) << "n = " << n;
}

TYPED_TEST(CpuKernels, FindNonfiniteMatchesReferenceOnOddSizes) {
  using T = TypeParam;
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{7}, std::int64_t{16385}, kBig}) {
    std::vector<T> x = random_vec<T>(n, -1e30, 1e30, 11);  // huge but finite values stay finite
    expect_first_nonfinite_matches(x);
    if (n == 0) continue;
    // One bad value at the start, at a chunk edge, at the end; then two (the first counts).
    for (std::int64_t pos : {std::int64_t{0}, std::min<std::int64_t>(16384, n - 1), n - 1}) {
      for (T bad : {nan, inf, -inf}) {
        std::vector<T> y = x;
        y[pos] = bad;
        expect_first_nonfinite_matches(y);
      }
    }
    std::vector<T> two = x;
    two[n - 1] = nan;
    two[n / 2] = -inf;
    expect_first_nonfinite_matches(two);
    std::vector<T> big = x;  // the largest finite value is finite
    big[n / 3] = std::numeric_limits<T>::max();
    big[n / 4] = std::numeric_limits<T>::denorm_min();
    expect_first_nonfinite_matches(big);
  }
}

TEST(FindNonfiniteKernel, Int64DataIsAlwaysFinite) {
  const std::vector<std::int64_t> v = {1, -5, 7};
  std::int64_t at = -1;
  cpu().find_nonfinite(DType::Int64, 3, v.data(), &at);
  EXPECT_EQ(at, 3);
}

}  // namespace
}  // namespace shrink::kernels

namespace shrink {
namespace {

TEST(FirstNonfinite, ReportsPositionAndDescribesTheValue) {
  Tensor x = Tensor::from_vector(std::vector<float>(12, 1.0f), {3, 4});
  EXPECT_EQ(first_nonfinite(x), -1);
  static_cast<float*>(x.raw_data())[6] = -std::numeric_limits<float>::infinity();
  static_cast<float*>(x.raw_data())[9] = std::numeric_limits<float>::quiet_NaN();
  ASSERT_EQ(first_nonfinite(x), 6);
  EXPECT_EQ(nonfinite_str(x, 6), "-inf at element 6 (index [1, 2] of (3, 4))");
  EXPECT_EQ(nonfinite_str(x, 9), "nan at element 9 (index [2, 1] of (3, 4))");
  EXPECT_EQ(first_nonfinite(Tensor::from_vector(std::vector<std::int64_t>{1, 2}, {2})), -1);
  EXPECT_EQ(first_nonfinite(Tensor::zeros({0, 5}, DType::Float64)), -1);
}

}  // namespace
}  // namespace shrink
