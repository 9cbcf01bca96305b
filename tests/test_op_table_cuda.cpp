// The op table (tests/op_table.h) on the GPU: every row runs on the CPU and on CUDA from the
// same inputs, backward with the same upstream gradient, in float32 and float64; the outputs
// and every input gradient must agree ("OpTable/CudaVsCpu.<row>"). Tolerances are the row's
// tol32 / tol64 (atol and rtol): the kernels differ only in summation order, FMA contraction
// and 1-4 ulp transcendental functions (see test_kernels_elementwise_cuda.cpp). Also:
// gradients flow back through Tensor::to across devices. Skips without a GPU.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/shrink.h"
#include "tests/op_table.h"
#include "tests/test_helpers.h"

namespace shrink::testing {
namespace {

struct Run {
  Tensor out;
  std::vector<Tensor> grads;
};

// Inputs (float64 CPU values) cast to `dtype`, moved to `device` and made leaves; forward, then
// backward seeded with `seed` (float64 CPU values of the output's shape).
Run run_on(const OpCase& c, const std::vector<Tensor>& drawn, DType dtype, Device device,
           const std::vector<double>& seed) {
  std::vector<Tensor> inputs;
  // detach(): a fresh leaf even where to() returned `x` itself (same dtype and device).
  for (const Tensor& x : drawn) inputs.push_back(x.to(dtype).to(device).detach().requires_grad_());
  Run r;
  r.out = c.fn(inputs);
  const Tensor g = Tensor::from_vector(seed, r.out.shape()).to(dtype).to(r.out.device());
  r.out.backward(g);
  for (const Tensor& x : inputs) r.grads.push_back(x.grad());
  return r;
}

void compare_devices(const OpCase& c) {
  SHRINK_SKIP_WITHOUT_GPU();
  if (!c.no_cuda.empty()) GTEST_SKIP() << c.no_cuda;
  const std::vector<Tensor> drawn = draw_inputs(c);
  // The upstream gradient: random signs and sizes, so no element hides in a sum.
  Tensor probe;
  {
    NoGradGuard no_grad;
    probe = c.fn(drawn);
  }
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> u(0.5, 1.5);
  std::vector<double> seed(static_cast<std::size_t>(probe.numel()));
  for (auto& s : seed) s = (rng() & 1 ? 1.0 : -1.0) * u(rng);
  for (DType dtype : {DType::Float64, DType::Float32}) {
    const double tol = dtype == DType::Float32 ? c.tol32 : c.tol64;
    const std::string what = c.name + " " + dtype_name(dtype);
    const Run cpu = run_on(c, drawn, dtype, Device::cpu(), seed);
    const Run gpu = run_on(c, drawn, dtype, Device::cuda(), seed);
    EXPECT_TRUE(all_close(what + " forward", gpu.out, cpu.out, tol, tol));
    for (std::size_t i = 0; i < cpu.grads.size(); ++i) {
      if (gpu.grads[i].defined()) {
        EXPECT_TRUE(gpu.grads[i].device().is_cuda()) << what << " gradient of input " << i;
      }
      EXPECT_TRUE(all_close(what + " gradient of input " + std::to_string(i), gpu.grads[i],
                            cpu.grads[i], tol, tol));
    }
  }
}

const bool kCudaVsCpu = register_op_tests("OpTable/CudaVsCpu", compare_devices, __FILE__, __LINE__);

// Tensor::to across devices is differentiable (core/tensor.cpp): a CPU leaf goes to the GPU,
// through GPU ops, back to the CPU for the loss; its gradient arrives on the CPU and equals
// the all-CPU gradient. The reverse trip (a GPU leaf through CPU ops) as well.
TEST(CudaTensorTo, GradientFlowsBackAcrossDevices) {
  SHRINK_SKIP_WITHOUT_GPU();
  const auto values = random_vec<double>(12, -2, 2, 3);
  const auto seed_values = random_vec<double>(12, -1, 1, 4);
  auto f = [](const Tensor& x) { return mul(tanh(x), x); };  // d/dx = (1 - tanh^2) x + tanh
  Tensor ref_leaf = Tensor::from_vector(values, {3, 4}).requires_grad_();
  sum(mul(f(ref_leaf), Tensor::from_vector(seed_values, {3, 4}))).backward();
  const Tensor seed = Tensor::from_vector(seed_values, {3, 4});

  Tensor cpu_leaf = Tensor::from_vector(values, {3, 4}).requires_grad_();
  Tensor on_gpu = cpu_leaf.to(Device::cuda());
  ASSERT_TRUE(on_gpu.requires_grad());
  Tensor back = f(on_gpu).to(Device::cpu());
  ASSERT_TRUE(back.device().is_cpu());
  sum(mul(back, seed)).backward();
  ASSERT_TRUE(cpu_leaf.grad().defined());
  EXPECT_TRUE(cpu_leaf.grad().device().is_cpu());
  EXPECT_TRUE(all_close("cpu -> cuda -> cpu gradient", cpu_leaf.grad(), ref_leaf.grad(), 1e-12, 1e-12));

  Tensor gpu_leaf = Tensor::from_vector(values, {3, 4}).to(Device::cuda()).requires_grad_();
  sum(mul(f(gpu_leaf.to(Device::cpu())), seed)).backward();
  ASSERT_TRUE(gpu_leaf.grad().defined());
  EXPECT_TRUE(gpu_leaf.grad().device().is_cuda());
  EXPECT_TRUE(all_close("cuda -> cpu gradient", gpu_leaf.grad(), ref_leaf.grad(), 0, 0));
}

}  // namespace
}  // namespace shrink::testing
