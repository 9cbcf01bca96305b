// The CUDA conv2d kernels (cuDNN) against their CPU twins (kernels/cpu/conv.cpp, itself
// checked against the reference loops in test_kernels_conv.cpp) on odd shapes: stride 2,
// padding, dilation 2, groups 2, depthwise (with and without a channel multiplier), 1x1, a
// kernel as large as the padded input; forward with and without bias, backward-input and
// backward-weight, float32 and float64. Also: a second call of a shape reuses its cached
// algorithm and workspace (no new cudaMalloc, the same bits), and empty batches.
//
// Bound per element: eps_T * (sum over the element's terms of |a||b|, plus |bias|), the
// worst-case rounding of any summation order, computed by the reference loop on absolute
// values; eps_T = 5e-5 for float32 (TF32 off, so cuDNN sums plainly in float32 as the CPU,
// but backward-weight sums up to 8192 terms per element in both) and 1e-12 for float64.
// Every test skips where no GPU is present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference/conv.h"
#include "tests/conv_shapes.h"
#include "tests/cuda_kernel_test.h"
#ifdef SHRINK_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace shrink::kernels {
namespace {

using testing::random_vec;

template <class T> constexpr double eps() { return std::is_same_v<T, float> ? 5e-5 : 1e-12; }

constexpr auto conv = testing::conv_shape;

struct Case {
  const char* name;
  Conv2dShape s;
};
const Case kCases[] = {
    {"3x3_pad1", conv(2, 5, 7, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
    {"stride2_pad2x1", conv(3, 3, 8, 7, 5, 3, 3, 2, 2, 2, 1, 1, 1, 1)},
    {"dilation2", conv(2, 3, 9, 8, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1)},
    {"odd_k3x2_stride2x1_pad1x0_dil2x1", conv(3, 5, 7, 9, 4, 3, 2, 2, 1, 1, 0, 2, 1, 1)},
    {"groups2", conv(3, 6, 7, 5, 4, 3, 3, 1, 2, 1, 1, 1, 1, 2)},
    {"groups2_stride2_dil2", conv(2, 4, 11, 10, 6, 3, 3, 2, 2, 2, 1, 2, 2, 2)},
    {"depthwise_3x3_pad1", conv(2, 8, 6, 7, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8)},
    {"depthwise_stride2_dil2", conv(2, 4, 9, 8, 4, 3, 3, 2, 2, 2, 2, 2, 2, 4)},
    {"depthwise_multiplier2", conv(3, 5, 7, 9, 10, 3, 2, 2, 1, 1, 0, 2, 1, 5)},
    {"1x1", conv(3, 5, 7, 9, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
    {"1x1_stride2", conv(3, 5, 7, 9, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1)},
    {"1x1_groups2", conv(2, 6, 5, 3, 4, 1, 1, 1, 1, 0, 0, 1, 1, 2)},
    {"kernel_as_large_as_padded_input", conv(3, 5, 7, 9, 4, 9, 9, 1, 1, 1, 0, 1, 1, 1)},
    {"lenet_5x5", conv(9, 1, 28, 28, 6, 5, 5, 1, 1, 0, 0, 1, 1, 1)},
    {"resnet_block_3x3", conv(8, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
    {"mobilenet_depthwise_stride2", conv(4, 32, 16, 16, 32, 3, 3, 2, 2, 1, 1, 1, 1, 32)},
};

std::int64_t x_size(const Conv2dShape& s) { return s.n * s.c_in * s.h * s.w; }
std::int64_t w_size(const Conv2dShape& s) { return s.c_out * (s.c_in / s.groups) * s.kh * s.kw; }
std::int64_t y_size(const Conv2dShape& s) { return s.n * s.c_out * s.out_h() * s.out_w(); }

std::string describe(const Case& c) {
  const Conv2dShape& s = c.s;
  return std::string(c.name) + " n=" + std::to_string(s.n) + " c_in=" + std::to_string(s.c_in) +
         " " + std::to_string(s.h) + "x" + std::to_string(s.w) + " c_out=" +
         std::to_string(s.c_out) + " groups=" + std::to_string(s.groups);
}

std::vector<double> doubles(const std::vector<float>& v) { return {v.begin(), v.end()}; }
std::vector<double> doubles(const std::vector<double>& v) { return v; }

template <class T>
class CudaConv : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CudaConv, FloatTypes);

// With and without a bias, then with the epilogue (kernel_types.h: + residual, then ReLU or
// ReLU6) on the biased one. The bound is the convolution's; the add and both activations are
// 1-Lipschitz, so it holds after them with |residual| added for the add's rounding.
TYPED_TEST(CudaConv, ForwardMatchesCpuWithBiasAndEpilogues) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (const Case& c : kCases) {
    SCOPED_TRACE(describe(c));
    const Conv2dShape& s = c.s;
    const auto x = random_vec<T>(x_size(s), -2, 2, 1);
    const auto w = random_vec<T>(w_size(s), -1, 1, 2);
    const auto b = random_vec<T>(s.c_out, -1, 1, 3);
    const auto r = random_vec<T>(y_size(s), -8, 8, 4);
    DeviceVec<T> dx(x), dw(w), db(b), dr(r), dy(static_cast<std::size_t>(y_size(s)));
    // variant 0: no bias; 1: bias; 2, 3, 4: bias and + residual, then none, ReLU, ReLU6.
    for (int variant = 0; variant < 5; ++variant) {
      const bool with_bias = variant > 0, add = variant > 1;
      ConvEpilogue post;
      post.activate = variant > 2;
      post.activation = variant == 4 ? UnaryOp::Relu6 : UnaryOp::Relu;
      std::vector<T> want(static_cast<std::size_t>(y_size(s)));
      post.residual = add ? r.data() : nullptr;
      cpu().conv2d(dt<T>(), s, x.data(), w.data(), with_bias ? b.data() : nullptr, post, want.data());
      post.residual = add ? dr.get() : nullptr;
      gpu().conv2d(dt<T>(), s, dx.get(), dw.get(), with_bias ? db.get() : nullptr, post, dy.get());
      std::vector<double> bound(want.size());
      const auto ax = doubles(absolute(x)), aw = doubles(absolute(w)), ab = doubles(absolute(b));
      reference::conv2d<double>(s, ax.data(), aw.data(), with_bias ? ab.data() : nullptr,
                                bound.data());
      for (std::size_t i = 0; i < bound.size(); ++i)
        bound[i] += (add ? std::abs(static_cast<double>(r[i])) : 0.0) + 1e-30;
      const char* what[] = {"forward", "forward with bias", "+ residual", "+ residual, relu", "+ residual, relu6"};
      expect_within(dy.host(), want, bound, eps<T>(), what[variant]);
    }
  }
}

TYPED_TEST(CudaConv, BackwardInputMatchesCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (const Case& c : kCases) {
    SCOPED_TRACE(describe(c));
    const Conv2dShape& s = c.s;
    const auto w = random_vec<T>(w_size(s), -1, 1, 4);
    const auto g = random_vec<T>(y_size(s), -1, 1, 5);
    DeviceVec<T> dw(w), dg(g), dx(static_cast<std::size_t>(x_size(s)));
    std::vector<T> want(static_cast<std::size_t>(x_size(s)));
    cpu().conv2d_backward_input(dt<T>(), s, w.data(), g.data(), want.data());
    gpu().conv2d_backward_input(dt<T>(), s, dw.get(), dg.get(), dx.get());
    std::vector<double> bound(want.size());
    const auto aw = doubles(absolute(w)), ag = doubles(absolute(g));
    reference::conv2d_backward_input<double>(s, aw.data(), ag.data(), bound.data());
    for (auto& v : bound) v += 1e-30;
    expect_within(dx.host(), want, bound, eps<T>(), "backward input");
  }
}

TYPED_TEST(CudaConv, BackwardWeightMatchesCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (const Case& c : kCases) {
    SCOPED_TRACE(describe(c));
    const Conv2dShape& s = c.s;
    const auto x = random_vec<T>(x_size(s), -2, 2, 6);
    const auto g = random_vec<T>(y_size(s), -1, 1, 7);
    DeviceVec<T> dx(x), dg(g), dw(static_cast<std::size_t>(w_size(s)));
    std::vector<T> want(static_cast<std::size_t>(w_size(s)));
    cpu().conv2d_backward_weight(dt<T>(), s, x.data(), g.data(), want.data());
    gpu().conv2d_backward_weight(dt<T>(), s, dx.get(), dg.get(), dw.get());
    std::vector<double> bound(want.size());
    const auto ax = doubles(absolute(x)), ag = doubles(absolute(g));
    reference::conv2d_backward_weight<double>(s, ax.data(), ag.data(), bound.data());
    for (auto& v : bound) v += 1e-30;
    expect_within(dw.host(), want, bound, eps<T>(), "backward weight");
  }
}

// The algorithm and workspace are chosen once per shape: a second round of the three
// directions calls cudaMalloc no more (the workspace block comes back from the caching
// allocator) and, with deterministic algorithms, reproduces the first round's bits.
TYPED_TEST(CudaConv, RepeatedShapeReusesPlanAndWorkspace) {
  SHRINK_SKIP_WITHOUT_GPU();
#ifdef SHRINK_WITH_CUDA
  using T = TypeParam;
  const Conv2dShape s = conv(6, 12, 15, 13, 10, 3, 3, 2, 1, 1, 1, 1, 2, 2);
  const auto x = random_vec<T>(x_size(s), -2, 2, 8);
  const auto w = random_vec<T>(w_size(s), -1, 1, 9);
  const auto g = random_vec<T>(y_size(s), -1, 1, 10);
  DeviceVec<T> dx(x), dw(w), dg(g), y(static_cast<std::size_t>(y_size(s))),
      gx(static_cast<std::size_t>(x_size(s))), gw(static_cast<std::size_t>(w_size(s)));
  auto round = [&] {
    gpu().conv2d(dt<T>(), s, dx.get(), dw.get(), nullptr, {}, y.get());
    gpu().conv2d_backward_input(dt<T>(), s, dw.get(), dg.get(), gx.get());
    gpu().conv2d_backward_weight(dt<T>(), s, dx.get(), dg.get(), gw.get());
    return std::vector<std::vector<T>>{y.host(), gx.host(), gw.host()};
  };
  const auto first = round();
  const std::size_t mallocs = cuda::cuda_malloc_calls();
  const auto second = round();
  EXPECT_EQ(cuda::cuda_malloc_calls(), mallocs) << "a repeated shape allocated device memory";
  EXPECT_EQ(second[0], first[0]) << "forward";
  EXPECT_EQ(second[1], first[1]) << "backward input";
  EXPECT_EQ(second[2], first[2]) << "backward weight";
#endif
}

// No images: forward and backward-input have nothing to write; the weight gradient is a sum
// over nothing, zeros (overwriting whatever the buffer held).
TYPED_TEST(CudaConv, EmptyBatchGivesZeroWeightGradient) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  const Conv2dShape s = conv(0, 4, 5, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2);
  DeviceVec<T> dw(std::vector<T>(static_cast<std::size_t>(w_size(s)), T(7)));
  gpu().conv2d(dt<T>(), s, nullptr, dw.get(), nullptr, {}, nullptr);
  gpu().conv2d_backward_input(dt<T>(), s, dw.get(), nullptr, nullptr);
  gpu().conv2d_backward_weight(dt<T>(), s, nullptr, nullptr, dw.get());
  EXPECT_EQ(dw.host(), std::vector<T>(static_cast<std::size_t>(w_size(s)), T(0)));
}

}  // namespace
}  // namespace shrink::kernels
