// The CUDA find_nonfinite kernel against its CPU twin (tests/test_value_checks.cpp checks the
// CPU one against the reference loop), through first_nonfinite on CUDA tensors. Skips where
// no GPU is present.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "core/ops.h"
#include "tests/test_helpers.h"

namespace shrink {
namespace {

using testing::random_vec;

template <class T>
void expect_same_on_both(std::vector<T> x, const std::vector<std::int64_t>& bad_at) {
  const T bads[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                    -std::numeric_limits<T>::infinity()};
  for (std::size_t i = 0; i < bad_at.size(); ++i) x[bad_at[i]] = bads[i % 3];
  const auto n = static_cast<std::int64_t>(x.size());
  Tensor cpu_x = Tensor::from_vector(x, {n});
  const std::int64_t on_cpu = first_nonfinite(cpu_x);
  Tensor gpu_x = cpu_x.to(Device::cuda());
  EXPECT_EQ(first_nonfinite(gpu_x), on_cpu) << "n = " << n;
  if (on_cpu >= 0) {
    EXPECT_EQ(nonfinite_str(gpu_x, on_cpu), nonfinite_str(cpu_x, on_cpu));
  }
}

TEST(ValueChecksCuda, FindNonfiniteMatchesCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  for (std::int64_t n : {1, 7, 16385, 1000003}) {
    expect_same_on_both(random_vec<float>(n, -1e30, 1e30, 3), {});
    expect_same_on_both(random_vec<double>(n, -1e300, 1e300, 4), {});
    expect_same_on_both(random_vec<float>(n, -1, 1, 5), {n - 1});
    expect_same_on_both(random_vec<double>(n, -1, 1, 6), {n / 2, n - 1, 0});
    expect_same_on_both(random_vec<float>(n, -1, 1, 7), {n - 1, n / 3});
  }
}

}  // namespace
}  // namespace shrink
