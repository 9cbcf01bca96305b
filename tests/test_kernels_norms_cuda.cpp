// The CUDA unit_norm kernel against its CPU twin (tests/test_kernels_norms.cpp checks the CPU
// against the reference loop) on odd shapes, short rows (a warp per unit) and long ones (a
// block per unit), both dtypes and both norms. Both sum in double, in different orders, so
// they agree to rounding. Every test skips where no GPU is present.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "kernels/backend.h"

namespace shrink {
namespace {

#define SKIP_WITHOUT_GPU()                                                                   \
  if (!kernels::cuda_available())                                                           \
  GTEST_SKIP() << "no CUDA GPU present: the CUDA unit_norm kernel is compared with the CPU " \
                  "only on a machine with a GPU (ctest -L cuda there)"

Tensor random_tensor(const Shape& shape, DType t, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(-4, 4);
  std::vector<double> v(static_cast<std::size_t>(numel(shape)));
  for (auto& x : v) x = d(rng);
  return Tensor::from_vector(v, shape).to(t);
}

TEST(UnitNormCuda, MatchesCpuOnOddShapes) {
  SKIP_WITHOUT_GPU();
  // (outer, units, inner): rows of 1..1024 elements use a warp per unit, longer ones a block.
  const std::vector<Shape> shapes = {{1, 1, 1},  {1, 7, 1},    {5, 3, 1},     {3, 1001, 1},
                                     {4, 9, 3},  {7, 1, 11},   {3, 17, 33},   {37, 1109, 1},
                                     {1, 97, 785}, {2, 5, 3001}, {1500, 3, 1}};
  for (DType t : {DType::Float32, DType::Float64})
    for (const Shape& shape : shapes)
      for (std::int64_t axis : {std::int64_t{1}, std::int64_t{0}, std::int64_t{2}})
        for (int p : {1, 2}) {
          SCOPED_TRACE(std::string(dtype_name(t)) + " " + shape_str(shape) + " axis " +
                       std::to_string(axis) + " p " + std::to_string(p));
          const Tensor x = random_tensor(shape, t, 5);
          const Tensor got = unit_norms(x.to(Device::cuda()), axis, p);
          ASSERT_TRUE(got.device().is_cuda());
          const auto g = got.to(Device::cpu()).to_vector<double>();
          const auto w = unit_norms(x, axis, p).to_vector<double>();
          ASSERT_EQ(g.size(), w.size());
          for (std::size_t u = 0; u < w.size(); ++u) EXPECT_NEAR(g[u], w[u], 1e-12 * (1 + w[u])) << "unit " << u;
        }
}

}  // namespace
}  // namespace shrink
