// The conv2d kernels (CPU: Winograd for float 3x3 stride-1 layers (conv_winograd.h), the
// direct float kernels of conv_direct.h, im2col + packed GEMM for
// float64 and strided float backward-input, depthwise row loops and 8-channel blocks) against the reference
// loops of kernels/reference/conv.h on odd shapes: stride, padding, dilation, groups,
// depthwise with and without a channel multiplier, 1x1 (the im2col-free path), a kernel as
// large as the padded input, and shapes above the OpenMP grain on both threading paths
// (whole images per thread; one image with a threaded GEMM). Forward (with and without bias),
// backward-input and backward-weight, in float32 and float64; plus thread-count identity,
// and the core op's FLOP count, selective gradients and empty batch.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/flop_counter.h"
#include "core/ops.h"
#include "core/tensor.h"
#include "kernels/reference/conv.h"
#include "tests/conv_shapes.h"
#include "tests/cpu_kernel_test.h"

namespace shrink::kernels {
namespace {

constexpr auto conv = testing::conv_shape;

struct Case {
  const char* name;
  Conv2dShape s;
};
const Case kCases[] = {
    {"odd_k3x2_stride2x1_pad1x0_dil2x1", conv(3, 5, 7, 9, 4, 3, 2, 2, 1, 1, 0, 2, 1, 1)},
    {"3x3_pad1", conv(2, 5, 7, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
    {"stride2_pad2x1", conv(3, 3, 8, 7, 5, 3, 3, 2, 2, 2, 1, 1, 1, 1)},
    {"groups2", conv(3, 6, 7, 5, 4, 3, 3, 1, 2, 1, 1, 1, 1, 2)},
    {"depthwise_odd", conv(3, 5, 7, 9, 5, 3, 2, 2, 1, 1, 0, 2, 1, 5)},
    {"depthwise_3x3_pad1", conv(2, 3, 6, 7, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3)},
    {"depthwise_stride2_dil2", conv(2, 4, 9, 8, 4, 3, 3, 2, 2, 2, 2, 2, 2, 4)},
    {"depthwise_3x3_unpadded", conv(2, 3, 6, 7, 3, 3, 3, 1, 1, 0, 0, 1, 1, 3)},
    {"depthwise_3x3_pad1x0_stride1x2", conv(2, 3, 5, 8, 3, 3, 3, 1, 2, 1, 0, 1, 1, 3)},
    {"depthwise_5x5_pad2_stride2x1", conv(2, 3, 9, 8, 3, 5, 5, 2, 1, 2, 2, 1, 1, 3)},
    {"depthwise_multiplier2", conv(3, 5, 7, 9, 10, 3, 2, 2, 1, 1, 0, 2, 1, 5)},
    {"1x1", conv(3, 5, 7, 9, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
    {"1x1_groups2", conv(2, 6, 5, 3, 4, 1, 1, 1, 1, 0, 0, 1, 1, 2)},
    {"1x1_stride2", conv(3, 5, 7, 9, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1)},
    {"1x1_pad1", conv(2, 3, 4, 5, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1)},
    {"kernel_as_large_as_padded_input", conv(3, 5, 7, 9, 4, 9, 9, 1, 1, 1, 0, 1, 1, 1)},
    {"dilated_kernel_spans_padded_input", conv(2, 2, 5, 6, 3, 3, 2, 1, 1, 0, 1, 2, 7, 1)},
    {"padding_larger_than_kernel", conv(1, 2, 3, 3, 2, 2, 2, 3, 2, 3, 2, 1, 1, 1)},
    // Several images per GEMM (small K P): col and the output pass through stacked blocks;
    // 9 images in blocks of 4 leave a last block of 1.
    {"stacked_images", conv(9, 1, 28, 28, 6, 5, 5, 1, 1, 0, 0, 1, 1, 1)},
    {"stacked_images_groups2", conv(7, 4, 10, 10, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2)},
    {"stacked_images_1x1", conv(5, 3, 6, 7, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
    // Above the OpenMP grain: whole images per thread, and one image with a threaded GEMM.
    {"big_images_parallel", conv(4, 16, 20, 18, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
    {"big_one_image", conv(1, 16, 33, 31, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
    {"big_1x1", conv(3, 32, 17, 19, 48, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
    {"big_depthwise", conv(4, 32, 20, 18, 32, 3, 3, 1, 1, 1, 1, 1, 1, 32)},
    // The direct kernels' blocking (conv_direct.h): k = 360 in two kKC blocks, 150 output
    // channels in 25 row panels; 297 pixels in runs of 8 that cross output rows; strided
    // images split into column phases.
    {"packed_k_and_row_blocks", conv(3, 40, 9, 11, 150, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
    {"packed_pixel_chunks_strided", conv(2, 7, 37, 35, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1)},
    // One input column at stride 2: the odd column phase of the padded copy is empty.
    {"one_column_stride2", conv(2, 3, 5, 1, 4, 3, 1, 2, 2, 1, 0, 1, 1, 1)},
    {"stride2_even_pad_wide", conv(2, 3, 9, 21, 5, 3, 3, 2, 2, 2, 2, 1, 1, 1)},
    // Rows of 29 at stride 2 split into phases 16 columns, then 8, then 5 at a time (column_phases.h).
    {"stride2_rows_16_8_5", conv(2, 4, 11, 29, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1)},
    {"1x1_stride2_odd", conv(3, 6, 9, 7, 5, 1, 1, 2, 3, 0, 0, 1, 1, 1)},
    // Rows of 37 at stride 2: each image subsampled 8 columns at a time, then the last 3 (conv_padded.h).
    {"1x1_stride2_rows_of_37", conv(2, 3, 6, 37, 5, 1, 1, 2, 2, 0, 0, 1, 1, 1)},
    {"stride3_dilation2_wide", conv(2, 5, 13, 40, 7, 3, 3, 3, 3, 2, 2, 2, 2, 1)},
    // Output rows of 4 pixels or fewer: the direct kernel reads the image's im2col columns as one row
    // of out_h out_w pixels (4x4 = 16: one tile instead of two half-empty ones), k = 513 in three kKC
    // blocks; grouped and dilated; one image, where threads share out the output channels.
    {"columns_stride2_onto_4x4", conv(3, 57, 8, 8, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1)},
    {"columns_groups2_dilation2", conv(2, 6, 9, 7, 10, 3, 3, 1, 2, 1, 1, 2, 2, 2)},
    {"columns_one_image_3x3_out", conv(1, 20, 3, 3, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
    // 1x1 unpadded at stride 1: the direct kernel runs the image as one row of h w pixels
    // (forward) and reads it in place, the last image's last pixel at the buffer's end
    // (backward-weight); strided 1x1 reaches both through the subsampled copy.
    {"1x1_one_row_4x4", conv(3, 5, 4, 4, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
    {"1x1_one_row_3x3", conv(2, 3, 3, 3, 5, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
    {"1x1_one_row_groups2", conv(3, 6, 2, 4, 4, 1, 1, 1, 1, 0, 0, 1, 1, 2)},
    {"1x1_one_row_dilated", conv(2, 4, 8, 3, 6, 1, 1, 1, 1, 0, 0, 3, 2, 1)},
    {"1x1_one_row_big_parallel", conv(5, 24, 8, 8, 40, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
    {"1x1_one_row_one_image_parts", conv(1, 8, 16, 16, 48, 1, 1, 1, 1, 0, 0, 1, 1, 1)},
    {"1x1_stride2_then_one_row", conv(3, 5, 8, 8, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1)},
    // Backward-weight with pixels as the lanes (conv_weight_pixels.h): a one-channel 3x3 kernel on
    // ragged rows (11 = 8 + a masked 3), strided and dilated; 8 outputs on 32-wide rows, above the
    // OpenMP grain; 5 outputs per group on 16-wide rows (tiles of 3 + 2 channels).
    {"weight_pixels_one_channel_ragged", conv(3, 1, 13, 11, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
    {"weight_pixels_one_channel_stride2", conv(2, 1, 9, 17, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1)},
    {"weight_pixels_one_channel_dilated", conv(2, 1, 12, 20, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1)},
    {"weight_pixels_32_wide_parallel", conv(4, 8, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1)},
    {"weight_pixels_16_wide_groups2", conv(2, 8, 5, 16, 10, 3, 3, 1, 1, 1, 1, 1, 1, 2)},
    // Strided depthwise reads column phases of its padded copy (column_phases.h): rows of 16
    // columns and more split 16 at a time, the rest one by one; odd and even padding; stride 3.
    {"depthwise_3x3_stride2_wide", conv(2, 3, 9, 37, 3, 3, 3, 2, 2, 1, 1, 1, 1, 3)},
    {"depthwise_3x3_stride2_unpadded", conv(2, 2, 8, 34, 2, 3, 3, 2, 2, 0, 0, 1, 1, 2)},
    {"depthwise_5x5_stride2_pad1_dil2", conv(1, 2, 17, 33, 2, 5, 5, 2, 2, 1, 1, 2, 2, 2)},
    {"depthwise_3x3_stride3", conv(2, 2, 10, 19, 2, 3, 3, 3, 3, 1, 1, 1, 1, 2)},
    // Output rows of at most 8 run 8 channels per vector (conv_depthwise_blocked.h): a last
    // block of 4, 1 or 3 channels; pixel counts that are not multiples of 8 on either side
    // (35, 25, 63 and 4 in; 12, 9, 4 and 36 out); stride 2 from 8x8 to 4x4; 5x5 dilated; a 3x2 kernel.
    // The wider twins keep the row loops on the same filters.
    {"depthwise_blocked_4x4_c20", conv(3, 20, 4, 4, 20, 3, 3, 1, 1, 1, 1, 1, 1, 20)},
    {"depthwise_blocked_stride2_7x5_c9", conv(2, 9, 7, 5, 9, 3, 3, 2, 2, 1, 1, 1, 1, 9)},
    {"depthwise_blocked_stride2_8x8", conv(2, 16, 8, 8, 16, 3, 3, 2, 2, 1, 1, 1, 1, 16)},
    {"depthwise_blocked_5x5_dil2", conv(2, 8, 6, 6, 8, 5, 5, 1, 1, 4, 4, 2, 2, 8)},
    {"depthwise_blocked_unpadded_5x5_in", conv(2, 16, 5, 5, 16, 3, 3, 1, 1, 0, 0, 1, 1, 16)},
    {"depthwise_blocked_2x2_pad1", conv(4, 8, 2, 2, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8)},
    {"depthwise_blocked_3x2_stride2x1_c11", conv(3, 11, 7, 9, 11, 3, 2, 2, 1, 1, 0, 2, 1, 11)},
    {"depthwise_blocked_big_parallel", conv(8, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 64)},
    {"depthwise_rows_3x2_wide", conv(3, 5, 7, 19, 5, 3, 2, 2, 1, 1, 0, 2, 1, 5)},
    {"depthwise_rows_3x3_pad1_wide", conv(2, 3, 6, 17, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3)},
    // 3x3 stride 1 on rows wider than 8 sweeps rolling row sums (conv_depthwise_3x3.h): masked
    // first and last chunks, whole chunks only (24 = 3 x 8), one row in the plane, unpadded
    // either way, and above the OpenMP grain.
    {"depthwise_3x3_rolling_24", conv(2, 5, 7, 24, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5)},
    {"depthwise_3x3_rolling_one_row", conv(3, 2, 1, 11, 2, 3, 3, 1, 1, 1, 1, 1, 1, 2)},
    {"depthwise_3x3_rolling_unpadded_rows", conv(2, 3, 8, 21, 3, 3, 3, 1, 1, 0, 1, 1, 1, 3)},
    {"depthwise_3x3_rolling_unpadded_cols", conv(2, 3, 5, 19, 3, 3, 3, 1, 1, 1, 0, 1, 1, 3)},
    {"depthwise_3x3_rolling_parallel", conv(4, 36, 16, 33, 36, 3, 3, 1, 1, 1, 1, 1, 1, 36)},
    {"depthwise_rows_5x5_stride2x1_wide", conv(2, 3, 9, 18, 3, 5, 5, 2, 1, 2, 2, 1, 1, 3)},
    // Depthwise backward on 8-channel blocks (conv_depthwise_blocked.h): backward-input where it
    // is no forward convolution (padding past the kernel's reach; a 1x1 kernel at stride 2),
    // backward-weight with one tap and with 49 (six register chunks, the last of 4), a last
    // block of 3 channels, and strided blocks above the OpenMP grain.
    {"depthwise_blocked_pad_past_kernel", conv(2, 10, 5, 6, 10, 3, 3, 1, 1, 3, 2, 1, 1, 10)},
    {"depthwise_blocked_1x1_stride2", conv(2, 9, 5, 7, 9, 1, 1, 2, 2, 0, 0, 1, 1, 9)},
    {"depthwise_blocked_7x7_stride1x2", conv(2, 11, 11, 10, 11, 7, 7, 1, 2, 3, 3, 1, 1, 11)},
    {"depthwise_blocked_stride2_parallel", conv(4, 40, 17, 15, 40, 3, 3, 2, 2, 1, 1, 1, 1, 40)},
};

std::string describe(const Case& c) {
  const Conv2dShape& s = c.s;
  return std::string(c.name) + ": n=" + std::to_string(s.n) + " c_in=" + std::to_string(s.c_in) +
         " h=" + std::to_string(s.h) + " w=" + std::to_string(s.w) + " c_out=" + std::to_string(s.c_out) +
         " k=" + std::to_string(s.kh) + "x" + std::to_string(s.kw) + " groups=" + std::to_string(s.groups);
}

std::int64_t x_size(const Conv2dShape& s) { return s.n * s.c_in * s.h * s.w; }
std::int64_t w_size(const Conv2dShape& s) { return s.c_out * (s.c_in / s.groups) * s.kh * s.kw; }
std::int64_t y_size(const Conv2dShape& s) { return s.n * s.c_out * s.out_h() * s.out_w(); }

// Rounding bound per element for a sum of `terms` products of values in [-1, 1]:
// atol = rtol = (per-term relative error) * terms, far below any indexing mistake (O(1)).
// A float 3x3 stride-1 convolution may run as Winograd F(4x4, 3x3) in either direction
// (conv_winograd.h), whose transforms amplify rounding by ~10^2.
template <class T>
double conv_tol(std::int64_t terms, const Conv2dShape& s) {
  const bool winograd = std::is_same_v<T, float> && s.kh == 3 && s.kw == 3 && s.stride_h == 1 &&
                        s.stride_w == 1 && s.dilation_h == 1 && s.dilation_w == 1 && s.groups == 1;
  return (std::is_same_v<T, float> ? (winograd ? 100 : 1) * 2e-7 : 1e-15) * static_cast<double>(terms + 4);
}

TYPED_TEST(CpuKernels, Conv2dForwardMatchesReference) {
  using T = TypeParam;
  for (const Case& c : kCases)
    for (bool with_bias : {true, false}) {
      const Conv2dShape& s = c.s;
      SCOPED_TRACE(describe(c) + (with_bias ? " with bias" : " without bias"));
      const auto x = random_vec<T>(x_size(s), -1, 1, 1);
      const auto w = random_vec<T>(w_size(s), -1, 1, 2);
      const auto b = random_vec<T>(s.c_out, -1, 1, 3);
      std::vector<T> got(static_cast<std::size_t>(y_size(s)), T(-7));
      cpu().conv2d(dtype_of<T>(), s, x.data(), w.data(), with_bias ? b.data() : nullptr, {}, got.data());
      std::vector<double> want(got.size());
      const auto bd = to_doubles(b);
      reference::conv2d(s, to_doubles(x).data(), to_doubles(w).data(), with_bias ? bd.data() : nullptr,
                        want.data());
      const double tol = conv_tol<T>((s.c_in / s.groups) * s.kh * s.kw, s);
      EXPECT_TRUE(all_close("conv2d", got, want, tol, tol));
    }
}

TYPED_TEST(CpuKernels, Conv2dBackwardInputMatchesReference) {
  using T = TypeParam;
  for (const Case& c : kCases) {
    const Conv2dShape& s = c.s;
    SCOPED_TRACE(describe(c));
    const auto w = random_vec<T>(w_size(s), -1, 1, 4);
    const auto dy = random_vec<T>(y_size(s), -1, 1, 5);
    std::vector<T> got(static_cast<std::size_t>(x_size(s)), T(-7));  // must be overwritten
    cpu().conv2d_backward_input(dtype_of<T>(), s, w.data(), dy.data(), got.data());
    std::vector<double> want(got.size());
    reference::conv2d_backward_input(s, to_doubles(w).data(), to_doubles(dy).data(), want.data());
    const double tol = conv_tol<T>((s.c_out / s.groups) * s.kh * s.kw, s);
    EXPECT_TRUE(all_close("conv2d_backward_input", got, want, tol, tol));
  }
}

TYPED_TEST(CpuKernels, Conv2dBackwardWeightMatchesReference) {
  using T = TypeParam;
  for (const Case& c : kCases) {
    const Conv2dShape& s = c.s;
    SCOPED_TRACE(describe(c));
    const auto x = random_vec<T>(x_size(s), -1, 1, 6);
    const auto dy = random_vec<T>(y_size(s), -1, 1, 7);
    std::vector<T> got(static_cast<std::size_t>(w_size(s)), T(-7));  // must be overwritten
    cpu().conv2d_backward_weight(dtype_of<T>(), s, x.data(), dy.data(), got.data());
    std::vector<double> want(got.size());
    reference::conv2d_backward_weight(s, to_doubles(x).data(), to_doubles(dy).data(), want.data());
    const double tol = conv_tol<T>(s.n * s.out_h() * s.out_w(), s);
    EXPECT_TRUE(all_close("conv2d_backward_weight", got, want, tol, tol));
  }
}

// An empty batch: the weight gradient is zero (not left unwritten).
TYPED_TEST(CpuKernels, Conv2dBackwardWeightOfAnEmptyBatchIsZero) {
  using T = TypeParam;
  for (std::int64_t groups : {1, 3}) {
    const Conv2dShape s = conv(0, 3, 5, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, groups);
    std::vector<T> dw(static_cast<std::size_t>(w_size(s)), T(-7));
    cpu().conv2d_backward_weight(dtype_of<T>(), s, nullptr, nullptr, dw.data());
    EXPECT_EQ(dw, std::vector<T>(dw.size(), T(0))) << "groups " << groups;
  }
}

// Same bits on one thread and on two, for each kernel and each threading path.
TYPED_TEST(CpuKernels, Conv2dIsIndependentOfTheThreadCount) {
  using T = TypeParam;
  const int before = omp_get_max_threads();
  for (const Case& c : kCases) {
    const Conv2dShape& s = c.s;
    SCOPED_TRACE(describe(c));
    const auto x = random_vec<T>(x_size(s), -1, 1, 8);
    const auto w = random_vec<T>(w_size(s), -1, 1, 9);
    const auto b = random_vec<T>(s.c_out, -1, 1, 10);
    const auto dy = random_vec<T>(y_size(s), -1, 1, 11);
    std::vector<T> y[2], dx[2], dw[2];
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      auto& yy = y[threads - 1];
      auto& dxx = dx[threads - 1];
      auto& dww = dw[threads - 1];
      yy.resize(static_cast<std::size_t>(y_size(s)));
      dxx.resize(static_cast<std::size_t>(x_size(s)));
      dww.resize(static_cast<std::size_t>(w_size(s)));
      cpu().conv2d(dtype_of<T>(), s, x.data(), w.data(), b.data(), {}, yy.data());
      cpu().conv2d_backward_input(dtype_of<T>(), s, w.data(), dy.data(), dxx.data());
      cpu().conv2d_backward_weight(dtype_of<T>(), s, x.data(), dy.data(), dww.data());
    }
    omp_set_num_threads(before);
    EXPECT_TRUE(testing::all_same("conv2d", y[1], y[0]));
    EXPECT_TRUE(testing::all_same("conv2d_backward_input", dx[1], dx[0]));
    EXPECT_TRUE(testing::all_same("conv2d_backward_weight", dw[1], dw[0]));
  }
}

TEST(Conv2dKernel, RejectsInt64ByName) {
  const Conv2dShape s = conv(1, 1, 3, 3, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1);
  std::vector<std::int64_t> buf(9, 1);
  auto expect_named = [](const std::function<void()>& f, const std::string& name) {
    try {
      f();
      ADD_FAILURE() << name << " accepted int64 data";
    } catch (const Unsupported& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  expect_named([&] { cpu().conv2d(DType::Int64, s, buf.data(), buf.data(), nullptr, {}, buf.data()); },
               "conv2d");
  expect_named([&] { cpu().conv2d_backward_input(DType::Int64, s, buf.data(), buf.data(), buf.data()); },
               "conv2d_backward_input");
  expect_named([&] { cpu().conv2d_backward_weight(DType::Int64, s, buf.data(), buf.data(), buf.data()); },
               "conv2d_backward_weight");
}

}  // namespace
}  // namespace shrink::kernels

namespace shrink {
namespace {

// The op counts 2 n c_out out_h out_w (c_in / groups) kh kw FLOPs, plus one per output for
// the bias (core/ops.h).
TEST(Conv2dOp, CountsFlopsByTheFormula) {
  const Tensor x = Tensor::ones({2, 6, 9, 8});
  Conv2dOptions o;
  o.stride_h = 2, o.pad_h = 1, o.pad_w = 1, o.groups = 3;
  FlopCounter with_bias;
  const Tensor y = conv2d(x, Tensor::ones({9, 2, 3, 3}), Tensor::ones({9}), o);
  ASSERT_EQ(y.shape(), (Shape{2, 9, 5, 8}));
  const std::int64_t outputs = 2 * 9 * 5 * 8;  // out_h = (9 + 2 - 3) / 2 + 1
  EXPECT_EQ(with_bias.count(), 2 * outputs * 2 * 3 * 3 + outputs);
  FlopCounter without_bias;
  conv2d(x, Tensor::ones({9, 2, 3, 3}), Tensor(), o);
  EXPECT_EQ(without_bias.count(), 2 * outputs * 2 * 3 * 3);
}

// Gradients go only to the inputs that asked for them; an all-ones 3x3 filter with padding 1
// gives dx = the number of output positions each pixel reaches (9 inside, 4 in a corner).
TEST(Conv2dOp, GradientsOnlyWhereRequested) {
  const Tensor x = Tensor::ones({1, 1, 4, 4}).requires_grad_();
  const Tensor w = Tensor::ones({1, 1, 3, 3});
  const Tensor b = Tensor::zeros({1}).requires_grad_();
  Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  sum(conv2d(x, w, b, o)).backward();
  EXPECT_FALSE(w.grad().defined());
  ASSERT_TRUE(x.grad().defined());
  const auto dx = x.grad().to_vector<float>();
  EXPECT_EQ(dx[0], 4.0f);   // corner
  EXPECT_EQ(dx[1], 6.0f);   // edge
  EXPECT_EQ(dx[5], 9.0f);   // inside
  EXPECT_EQ(b.grad().to_vector<float>(), std::vector<float>{16.0f});  // one per output pixel
}

// An empty batch gives an empty output, a zero weight gradient and an empty input gradient.
TEST(Conv2dOp, EmptyBatch) {
  const Tensor x = Tensor::zeros({0, 3, 5, 5}).requires_grad_();
  const Tensor w = Tensor::ones({2, 3, 3, 3}).requires_grad_();
  const Tensor y = conv2d(x, w, Tensor());
  EXPECT_EQ(y.shape(), (Shape{0, 2, 3, 3}));
  sum(y).backward();
  EXPECT_EQ(x.grad().shape(), x.shape());
  EXPECT_EQ(w.grad().to_vector<float>(), std::vector<float>(54, 0.0f));
}

// conv2d_then refuses a residual of another shape naming itself and both shapes; where no
// input needs a gradient it is one op with conv2d's FLOPs and no graph, and where one does it
// records the separate ops (their gradients).
TEST(Conv2dOp, ThenChecksItsResidualAndRecordsTheSeparateOpsOnlyForGradients) {
  Generator gen(4);
  const Tensor x = Tensor::randn({2, 3, 6, 6}, gen), w = Tensor::randn({4, 3, 3, 3}, gen);
  const Tensor b = Tensor::randn({4}, gen);
  Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  try {
    conv2d_then(x, w, b, o, Tensor::zeros({2, 4, 5, 6}), ConvActivation::Relu);
    ADD_FAILURE() << "a residual of the wrong shape was accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("conv2d_then"), std::string::npos) << what;
    EXPECT_NE(what.find("(2, 4, 5, 6)"), std::string::npos) << what;
    EXPECT_NE(what.find("(2, 4, 6, 6)"), std::string::npos) << what;
  }
  const Tensor r = Tensor::randn({2, 4, 6, 6}, gen);
  FlopCounter counter;
  const Tensor fused = conv2d_then(x, w, b, o, r, ConvActivation::Relu);
  EXPECT_EQ(counter.count(), 2 * 2 * 4 * 36 * 27 + 2 * 4 * 36);
  EXPECT_FALSE(fused.grad_fn());
  EXPECT_EQ(fused.to_vector<float>(), add_relu(conv2d(x, w, b, o), r).to_vector<float>());
  const Tensor wg = w.detach().requires_grad_();
  const Tensor traced = conv2d_then(x, wg, b, o, r, ConvActivation::Relu);
  ASSERT_TRUE(traced.grad_fn());
  EXPECT_STREQ(traced.grad_fn()->op, "add_relu");
  EXPECT_EQ(traced.to_vector<float>(), fused.to_vector<float>());
}

// conv2d_residual_chain refuses a block whose output is not shaped as its input, naming itself,
// the block and both shapes; without gradients it is one op with every convolution's FLOPs and
// the values of conv2d_then twice a block; with them it records those ops (their gradients:
// op_table.h checks them against finite differences).
TEST(Conv2dOp, ResidualChainChecksItsShapesAndRecordsTheSeparateOpsOnlyForGradients) {
  Generator gen(5);
  const Tensor x = Tensor::randn({4, 5, 7, 6}, gen);
  Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  const ResidualBlockWeights first{Tensor::randn({6, 5, 3, 3}, gen), Tensor::randn({6}, gen), o,
                                   Tensor::randn({5, 6, 3, 3}, gen), Tensor::randn({5}, gen), o};
  const ResidualBlockWeights second{Tensor::randn({3, 5, 3, 3}, gen), Tensor(), o,
                                    Tensor::randn({5, 3, 3, 3}, gen), Tensor::randn({5}, gen), o};
  ResidualBlockWeights narrowing = second;
  narrowing.w2 = Tensor::randn({4, 3, 3, 3}, gen);
  narrowing.b2 = Tensor();
  try {
    conv2d_residual_chain(x, {first, narrowing});
    ADD_FAILURE() << "a block whose output has 4 channels was added to an input of 5";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("conv2d_residual_chain: block 1"), std::string::npos) << what;
    EXPECT_NE(what.find("(4, 4, 7, 6)"), std::string::npos) << what;
    EXPECT_NE(what.find("(4, 5, 7, 6)"), std::string::npos) << what;
  }
  FlopCounter counter;
  const Tensor chained = conv2d_residual_chain(x, {first, second});
  const std::int64_t pixels = 4 * 7 * 6;
  EXPECT_EQ(counter.count(), 2 * pixels * 6 * 45 + pixels * 6 + 2 * pixels * 5 * 54 + pixels * 5 +
                                 2 * pixels * 3 * 45 + 2 * pixels * 5 * 27 + pixels * 5);
  EXPECT_FALSE(chained.grad_fn());
  Tensor apart = x;
  for (const ResidualBlockWeights& k : {first, second})
    apart = conv2d_then(conv2d_then(apart, k.w1, k.b1, o, Tensor(), ConvActivation::Relu), k.w2, k.b2, o, apart,
                        ConvActivation::Relu);
  EXPECT_EQ(chained.to_vector<float>(), apart.to_vector<float>());
  ResidualBlockWeights trainable = second;
  trainable.w2 = second.w2.detach().requires_grad_();
  const Tensor traced = conv2d_residual_chain(x, {first, trainable});
  ASSERT_TRUE(traced.grad_fn());
  EXPECT_STREQ(traced.grad_fn()->op, "add_relu");
  EXPECT_EQ(traced.to_vector<float>(), chained.to_vector<float>());
}

// inverted_residual_chain refuses a block whose output is not shaped as the input it is added
// to, naming itself, the block and both shapes; without gradients it is one op with every
// convolution's FLOPs and the values of conv2d_then for each convolution (within rounding: the
// fused kernel may order a sum differently); with them it records those ops.
TEST(Conv2dOp, InvertedResidualChainChecksItsShapesAndRecordsTheSeparateOpsOnlyForGradients) {
  Generator gen(6);
  const Tensor x = Tensor::randn({4, 5, 7, 6}, gen);
  Conv2dOptions dw;
  dw.pad_h = dw.pad_w = 1;
  dw.groups = 10;
  InvertedResidualWeights first;
  first.expand_weight = Tensor::randn({10, 5, 1, 1}, gen), first.expand_bias = Tensor::randn({10}, gen);
  first.depthwise_weight = Tensor::randn({10, 1, 3, 3}, gen), first.depthwise_bias = Tensor::randn({10}, gen);
  first.depthwise_options = dw;
  first.project_weight = Tensor::randn({5, 10, 1, 1}, gen), first.project_bias = Tensor::randn({5}, gen);
  first.residual = true;
  InvertedResidualWeights second = first;  // stride 2, no biases, not added
  second.depthwise_options.stride_h = second.depthwise_options.stride_w = 2;
  second.expand_bias = second.depthwise_bias = second.project_bias = Tensor();
  second.residual = false;
  InvertedResidualWeights narrowing = first;
  narrowing.project_weight = Tensor::randn({4, 10, 1, 1}, gen);
  narrowing.project_bias = Tensor();
  try {
    inverted_residual_chain(x, {first, narrowing});
    ADD_FAILURE() << "a block whose output has 4 channels was added to an input of 5";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("inverted_residual_chain: block 1"), std::string::npos) << what;
    EXPECT_NE(what.find("(4, 4, 7, 6)"), std::string::npos) << what;
    EXPECT_NE(what.find("(4, 5, 7, 6)"), std::string::npos) << what;
  }
  FlopCounter counter;
  const Tensor chained = inverted_residual_chain(x, {first, second});
  const std::int64_t pixels = 4 * 7 * 6, half = 4 * 4 * 3;  // 7x6 -> 4x3 at stride 2
  EXPECT_EQ(counter.count(), (2 * pixels * 10 * 5 + pixels * 10) + (2 * pixels * 10 * 9 + pixels * 10) +
                                 (2 * pixels * 5 * 10 + pixels * 5) + 2 * pixels * 10 * 5 + 2 * half * 10 * 9 +
                                 2 * half * 5 * 10);
  EXPECT_FALSE(chained.grad_fn());
  Tensor apart = x;
  for (const InvertedResidualWeights& k : {first, second}) {
    const Tensor e = conv2d_then(apart, k.expand_weight, k.expand_bias, {}, Tensor(), ConvActivation::Relu6);
    const Tensor d = conv2d_then(e, k.depthwise_weight, k.depthwise_bias, k.depthwise_options, Tensor(),
                                 ConvActivation::Relu6);
    apart = conv2d_then(d, k.project_weight, k.project_bias, {}, k.residual ? apart : Tensor(), ConvActivation::None);
  }
  ASSERT_EQ(chained.shape(), apart.shape());
  const std::vector<float> got = chained.to_vector<float>(), want = apart.to_vector<float>();
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << i;
  InvertedResidualWeights trainable = second;
  trainable.project_weight = second.project_weight.detach().requires_grad_();
  const Tensor traced = inverted_residual_chain(x, {first, trainable});
  ASSERT_TRUE(traced.grad_fn());
  EXPECT_STREQ(traced.grad_fn()->op, "conv2d");
  EXPECT_EQ(traced.to_vector<float>(), apart.to_vector<float>());
}

}  // namespace
}  // namespace shrink
