// The CUDA cholesky (cuSOLVER potrf) and triangular_solve (cuBLAS trsm) kernels against
// their CPU twins on odd sizes, in float and double; the first bad pivot of matrices that are
// not positive definite; and cholesky_solve on both devices. Bounds: |gpu - cpu| <=
// tol * (1 + |cpu|), tol 1e-4 for float (different blockings round differently on a matrix of
// condition ~10) and 1e-11 for double. Every test skips where no GPU is present.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "tests/test_helpers.h"

namespace shrink {
namespace {

using testing::all_close;
using testing::random_vec;

// M M^T / n + I / 2, M uniform in [-1, 1]: eigenvalues in about [0.5, 4.5].
Tensor spd(std::int64_t n, std::uint64_t seed, DType dtype) {
  const Tensor m = Tensor::from_vector(random_vec<double>(n * n, -1, 1, seed), {n, n});
  const Tensor eye = Tensor::from_vector([&] {
    std::vector<double> v(static_cast<std::size_t>(n * n), 0.0);
    for (std::int64_t i = 0; i < n; ++i) v[i * n + i] = 0.5;
    return v;
  }(), {n, n});
  return (matmul(m, transpose(m, 0, 1)) / static_cast<double>(n) + eye).to(dtype);
}

std::int64_t factor(const Tensor& a, Tensor& l) {
  const std::int64_t n = a.size(0);
  l = Tensor::full({n, n}, -7.0, a.dtype(), a.device());
  Tensor info = Tensor::empty({1}, DType::Int64, a.device());
  kernels::backend(a.device().type).cholesky(a.dtype(), n, a.raw_data(), l.raw_data(),
                                             static_cast<std::int64_t*>(info.raw_data()));
  return info.to(Device::cpu()).to_vector<std::int64_t>()[0];
}

double tol(DType t) { return t == DType::Float32 ? 1e-4 : 1e-11; }

TEST(CholeskyCuda, FactorMatchesCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  for (DType t : {DType::Float32, DType::Float64})
    for (std::int64_t n : {1, 2, 7, 129, 300, 641}) {
      const Tensor a = spd(n, 40 + static_cast<std::uint64_t>(n), t);
      Tensor l_cpu, l_gpu;
      ASSERT_EQ(factor(a, l_cpu), n);
      ASSERT_EQ(factor(a.to(Device::cuda()), l_gpu), n);
      EXPECT_TRUE(all_close(std::string("L ") + dtype_name(t) + " n = " + std::to_string(n),
                            l_gpu.to(Device::cpu()), l_cpu, tol(t), tol(t)));
    }
}

TEST(CholeskyCuda, TriangularSolveMatchesCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  for (DType t : {DType::Float32, DType::Float64})
    for (std::int64_t n : {1, 5, 129, 300}) {
      Tensor l;
      ASSERT_EQ(factor(spd(n, 9, t), l), n);
      for (std::int64_t r : {1, 3, 131})
        for (bool transpose : {false, true}) {
          const Tensor b = Tensor::from_vector(random_vec<double>(n * r, -1, 1, 5), {n, r}).to(t);
          Tensor x_cpu = Tensor::empty({n, r}, t), x_gpu = Tensor::empty({n, r}, t, Device::cuda());
          const Tensor l_gpu = l.to(Device::cuda()), b_gpu = b.to(Device::cuda());
          kernels::backend(DeviceType::CPU).triangular_solve(t, n, r, l.raw_data(), transpose, b.raw_data(),
                                                             x_cpu.raw_data());
          kernels::backend(DeviceType::CUDA).triangular_solve(t, n, r, l_gpu.raw_data(), transpose,
                                                              b_gpu.raw_data(), x_gpu.raw_data());
          EXPECT_TRUE(all_close(std::string("x ") + dtype_name(t) + " n = " + std::to_string(n) +
                                    " r = " + std::to_string(r) + (transpose ? " L^T" : " L"),
                                x_gpu.to(Device::cpu()), x_cpu, tol(t), tol(t)));
        }
    }
}

TEST(CholeskyCuda, ReportsTheSameBadPivotAsCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  for (auto [n, j] : {std::pair<std::int64_t, std::int64_t>{9, 5}, {300, 200}, {300, 0}}) {
    std::vector<double> a = spd(n, 3, DType::Float64).to_vector<double>();
    for (double bad : {-1.0, std::numeric_limits<double>::quiet_NaN()}) {
      a[j * n + j] = bad;
      const Tensor m = Tensor::from_vector(a, {n, n});
      Tensor l;
      EXPECT_EQ(factor(m, l), j) << "cpu, n = " << n << ", pivot value " << bad;
      EXPECT_EQ(factor(m.to(Device::cuda()), l), j) << "cuda, n = " << n << ", pivot value " << bad;
    }
  }
}

TEST(CholeskyCuda, SolveMatchesCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  const Tensor g = spd(517, 2, DType::Float32);
  const Tensor b = Tensor::from_vector(random_vec<double>(517 * 10, -1, 1, 3), {517, 10}).to(DType::Float32);
  const Tensor x_cpu = cholesky_solve(g, b);
  const Tensor x_gpu = cholesky_solve(g.to(Device::cuda()), b.to(Device::cuda()));
  EXPECT_TRUE(all_close("cholesky_solve", x_gpu.to(Device::cpu()), x_cpu, 1e-4, 1e-4));
}

}  // namespace
}  // namespace shrink
