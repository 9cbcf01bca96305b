// The pooling and batch-norm core ops beyond the op table's gradient checks: max pooling's
// gradient at tied maxima (central differences are undefined there), batch_norm's running
// statistics (updated in place with momentum and the unbiased variance, never recorded for
// autograd, left alone in evaluation), evaluation's backward with the running statistics,
// and gradients requested for only some inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/shrink.h"
#include "tests/test_helpers.h"

namespace shrink {
namespace {

using testing::all_close;
using testing::values_of;

Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s); }

// 2x2 windows at stride 1 over a plane with equal maxima: each window's first (row-major)
// maximum takes its whole gradient, as in PyTorch.
TEST(MaxPool2d, TiedMaximaSendTheGradientToTheFirst) {
  Tensor x = f64({5, 5, 1,
                  5, 5, 5,
                  0, 5, 2}, {1, 1, 3, 3});
  x.requires_grad_();
  Pool2dOptions o;
  o.kernel_h = o.kernel_w = 2;
  o.stride_h = o.stride_w = 1;
  Tensor y = max_pool2d(x, o);
  EXPECT_EQ(values_of(y), (std::vector<double>{5, 5, 5, 5}));
  y.backward(f64({1, 10, 100, 1000}, {1, 1, 2, 2}));
  // Windows start at (0,0), (0,1), (1,0), (1,1); their first maxima: (0,0), (0,1), (1,0), (1,1).
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{1, 10, 0, 100, 1000, 0, 0, 0, 0}));
}

TEST(MaxPool2d, PaddingNeverWinsAgainstNegativeValues) {
  Tensor x = f64({-3, -1, -2, -4}, {1, 1, 2, 2});
  x.requires_grad_();
  Pool2dOptions o;
  o.kernel_h = o.kernel_w = 3;
  o.stride_h = o.stride_w = 1;
  o.pad_h = o.pad_w = 1;
  Tensor y = max_pool2d(x, o);
  EXPECT_EQ(values_of(y), (std::vector<double>{-1, -1, -1, -1}));
  sum(y).backward();
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{0, 4, 0, 0}));
}

// x (n 2, c 2, hw 2) with known statistics per channel.
TEST(BatchNorm, TrainingUpdatesRunningStatisticsInPlaceLikePyTorch) {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    Tensor x = f64({1, 2, 10, 20,
                    3, 6, 30, 60}, {2, 2, 2}).to(dtype);  // channel 0: 1 2 3 6; channel 1: x10
    x.requires_grad_();
    Tensor rm = f64({1, -1}, {2}).to(dtype), rv = f64({2, 3}, {2}).to(dtype);
    const Tensor rm_handle = rm;  // same storage: the update is in place
    Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.25);
    // channel 0: mean 3, biased var 14 / 4, unbiased 14 / 3; channel 1: 30, 1400 / 4, 1400 / 3
    EXPECT_TRUE(all_close("running_mean", values_of(rm_handle), {0.75 * 1 + 0.25 * 3, 0.75 * -1 + 0.25 * 30},
                          1e-6, 1e-6));
    EXPECT_TRUE(all_close("running_var", values_of(rv), {0.75 * 2 + 0.25 * 14.0 / 3, 0.75 * 3 + 0.25 * 1400.0 / 3},
                          1e-5, 1e-6));
    EXPECT_FALSE(rm.requires_grad());
    EXPECT_FALSE(rv.grad_fn());
    const double s0 = 1 / std::sqrt(3.5 + 1e-5);
    EXPECT_TRUE(all_close("y", values_of(y), {-2 * s0, -1 * s0, -2 * s0, -1 * s0, 0, 3 * s0, 0, 3 * s0}, 1e-5, 1e-5));
  }
}

TEST(BatchNorm, EvaluationUsesAndKeepsTheRunningStatistics) {
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor gamma = f64({2, 3}, {2}), beta = f64({0.5, -1}, {2});
  x.requires_grad_();
  gamma.requires_grad_();
  beta.requires_grad_();
  Tensor rm = f64({1, 2}, {2}), rv = f64({4, 0.25}, {2});
  const double eps = 1e-3;
  Tensor y = batch_norm(x, gamma, beta, rm, rv, false, 0.1, eps);
  EXPECT_EQ(values_of(rm), (std::vector<double>{1, 2}));
  EXPECT_EQ(values_of(rv), (std::vector<double>{4, 0.25}));
  const double i0 = 1 / std::sqrt(4 + eps), i1 = 1 / std::sqrt(0.25 + eps);
  EXPECT_TRUE(all_close("y", values_of(y),
                        {0.5, 0 * 3 * i1 - 1, 2 * 2 * i0 + 0.5, 2 * 3 * i1 - 1, 4 * 2 * i0 + 0.5, 4 * 3 * i1 - 1},
                        1e-12, 1e-12));
  y.backward(f64({1, 2, 3, 4, 5, 6}, {3, 2}));
  // Evaluation is affine in x: dx = gamma invstd dy; dgamma = sum dy xhat; dbeta = sum dy.
  EXPECT_TRUE(all_close("dx", values_of(x.grad()), {2 * i0, 6 * i1, 6 * i0, 12 * i1, 10 * i0, 18 * i1}, 1e-12, 1e-12));
  EXPECT_TRUE(all_close("dgamma", values_of(gamma.grad()), {(0 * 1 + 2 * 3 + 4 * 5) * i0, (0 * 2 + 2 * 4 + 4 * 6) * i1},
                        1e-12, 1e-12));
  EXPECT_TRUE(all_close("dbeta", values_of(beta.grad()), {9, 12}, 1e-12, 1e-12));
}

// Only the inputs that require grad get one; gamma alone works without x.
TEST(BatchNorm, GradientsOnlyWhereRequested) {
  Tensor x = testing::random_tensor({4, 3, 5}, 3).to(DType::Float64);
  Tensor gamma = Tensor::ones({3}, DType::Float64), beta = Tensor::zeros({3}, DType::Float64);
  gamma.requires_grad_();
  sum(mul(batch_norm(x, gamma, beta, Tensor(), Tensor(), true), x)).backward();
  EXPECT_TRUE(gamma.grad().defined());
  EXPECT_FALSE(beta.grad().defined());
  EXPECT_FALSE(x.grad().defined());
  // Without any input requiring grad nothing is recorded.
  EXPECT_FALSE(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true).requires_grad());
}

TEST(BatchNorm, NoGradTrainingStillUpdatesTheRunningStatistics) {
  Tensor x = testing::random_tensor({6, 2}, 4);
  Tensor rm = Tensor::zeros({2}), rv = Tensor::ones({2});
  {
    NoGradGuard no_grad;
    batch_norm(x, Tensor(), Tensor(), rm, rv, true);
  }
  const std::vector<double> xs = values_of(x);
  double mean0 = 0;
  for (int i = 0; i < 6; ++i) mean0 += xs[static_cast<std::size_t>(2 * i)] / 6;
  EXPECT_NEAR(values_of(rm)[0], 0.1 * mean0, 1e-6);
}

// CUDA inputs pool on the GPU (kernels/cuda/pool.cu; compared with the CPU in
// test_kernels_pool_bn_cuda.cpp and the op table).
TEST(Pooling, CudaInputsPoolOnTheGpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU present";
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 4, 3, 2}, {1, 1, 2, 2}).to(Device::cuda());
  const Tensor y = max_pool2d(x, Pool2dOptions{});
  EXPECT_TRUE(y.device().is_cuda());
  EXPECT_EQ(values_of(y.to(Device::cpu())), std::vector<double>{4});
}

}  // namespace
}  // namespace shrink
