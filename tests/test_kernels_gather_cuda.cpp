// The CUDA gather / scatter_add / find_out_of_range kernels against their CPU twins on odd
// shapes (exact: both are copies and in-order sums), max's backward staying on the GPU, and
// the CSR kernels, which the CUDA backend does not provide: they throw Unsupported naming
// the kernel and the device. Every test skips where no GPU is present.
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

#define SKIP_WITHOUT_GPU()                                                                  \
  if (!kernels::cuda_available())                                                          \
  GTEST_SKIP() << "no CUDA GPU present: the CUDA gather kernels are compared with the CPU " \
                  "only on a machine with a GPU (ctest -L cuda there)"

std::vector<std::int64_t> random_indices(std::int64_t n, std::int64_t bound, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(bound));
  return v;
}

Tensor random_tensor(const Shape& shape, DType t, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(-4, 4);
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return Tensor::from_vector(v, shape).to(t);
}

struct Case {
  std::int64_t outer, in_dim, inner, n_idx;
};
const Case kCases[] = {{3, 7, 5, 4}, {1, 1, 1, 1}, {2, 9, 1, 13}, {1, 33, 17, 40}, {7, 300, 33, 2}};

TEST(GatherCuda, GatherAndScatterAddMatchCpu) {
  SKIP_WITHOUT_GPU();
  for (DType t : {DType::Float32, DType::Float64}) {
    for (const Case& c : kCases) {
      SCOPED_TRACE(std::string(dtype_name(t)) + " outer=" + std::to_string(c.outer) +
                   " in_dim=" + std::to_string(c.in_dim) + " inner=" + std::to_string(c.inner));
      const Shape idx_shape = {c.outer, c.n_idx, c.inner};
      Tensor x = random_tensor({c.outer, c.in_dim, c.inner}, t, 1);
      Tensor idx = Tensor::from_vector(random_indices(c.outer * c.n_idx * c.inner, c.in_dim, 2),
                                       idx_shape);
      Tensor xg = x.to(Device::cuda()), ig = idx.to(Device::cuda());
      xg.requires_grad_();
      x.requires_grad_();
      Tensor y = gather(x, 1, idx), yg = gather(xg, 1, ig);
      ASSERT_TRUE(yg.device().is_cuda());
      EXPECT_EQ(yg.to(Device::cpu()).to(DType::Float64).to_vector<double>(),
                y.to(DType::Float64).to_vector<double>());
      Tensor g = random_tensor(idx_shape, t, 3);
      y.backward(g);
      yg.backward(g.to(Device::cuda()));
      EXPECT_EQ(xg.grad().to(Device::cpu()).to(DType::Float64).to_vector<double>(),
                x.grad().to(DType::Float64).to_vector<double>());
    }
  }
}

TEST(GatherCuda, FindOutOfRangeMatchesCpuAndErrorNamesIndex) {
  SKIP_WITHOUT_GPU();
  kernels::Backend& gpu = kernels::backend(DeviceType::CUDA);
  std::vector<std::int64_t> v = random_indices(100000, 50, 4);
  v[77777] = 50;
  v[90000] = -3;
  Tensor on_gpu = Tensor::from_vector(v, {100000}).to(Device::cuda());
  Tensor at = Tensor::empty({1}, DType::Int64, Device::cuda());
  gpu.find_out_of_range(100000, static_cast<const std::int64_t*>(on_gpu.raw_data()), 50,
                        static_cast<std::int64_t*>(at.raw_data()));
  EXPECT_EQ(at.to_vector<std::int64_t>()[0], 77777);
  gpu.find_out_of_range(100000, static_cast<const std::int64_t*>(on_gpu.raw_data()), 51,
                        static_cast<std::int64_t*>(at.raw_data()));
  EXPECT_EQ(at.to_vector<std::int64_t>()[0], 90000);
  gpu.find_out_of_range(77777, static_cast<const std::int64_t*>(on_gpu.raw_data()), 50,
                        static_cast<std::int64_t*>(at.raw_data()));
  EXPECT_EQ(at.to_vector<std::int64_t>()[0], 77777);  // n: all in range
  try {
    index_select(Tensor::zeros({50, 2}, DType::Float32, Device::cuda()), 0, on_gpu);
    FAIL() << "an out-of-range index did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("index_select: index 50"), std::string::npos) << e.what();
  }
}

TEST(GatherCuda, MaxBackwardMatchesCpu) {
  SKIP_WITHOUT_GPU();
  for (int axis = 0; axis < 3; ++axis) {
    Tensor x = random_tensor({3, 7, 5}, DType::Float32, 5 + axis);
    Tensor xg = x.to(Device::cuda());
    x.requires_grad_();
    xg.requires_grad_();
    Tensor y = max(x, axis), yg = max(xg, axis);
    Tensor g = random_tensor(y.shape(), DType::Float32, 9);
    y.backward(g);
    yg.backward(g.to(Device::cuda()));
    ASSERT_TRUE(xg.grad().device().is_cuda());
    EXPECT_EQ(xg.grad().to(Device::cpu()).to_vector<float>(), x.grad().to_vector<float>());
  }
}

// The CSR kernels are CPU-only entries of the kernel list: on CUDA the call reaches
// Backend's default, which names the kernel and the device.
TEST(GatherCuda, CsrKernelsAreUnsupportedOnCudaByName) {
  SKIP_WITHOUT_GPU();
  Tensor values = Tensor::ones({2}, DType::Float32, Device::cuda());
  Tensor row_ptr = Tensor::from_vector(std::vector<std::int64_t>{0, 1, 2}, {3}).to(Device::cuda());
  Tensor col_idx = Tensor::from_vector(std::vector<std::int64_t>{0, 2}, {2}).to(Device::cuda());
  Tensor x = Tensor::ones({4, 3}, DType::Float32, Device::cuda());
  try {
    csr_linear(x, values, row_ptr, col_idx, 3, Tensor());
    FAIL() << "csr_linear on CUDA did not throw";
  } catch (const kernels::Unsupported& e) {
    EXPECT_EQ(std::string(e.what()), "kernel 'csr_linear' is not implemented on cuda");
  }
  GTEST_SKIP() << "csr_linear has no CUDA kernel yet (a CPU-only entry of "
                  "kernels/kernel_list.h): no CUDA-vs-CPU comparison to run";
}

}  // namespace
}  // namespace shrink
