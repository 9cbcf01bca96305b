// Which float32 kernel the CPU backend runs for a convolution, per pass: the one place that
// choice is made. conv.cpp dispatches on it; bench_conv labels each row with it, so the
// benchmark's label cannot drift from what conv2d runs. Float64 takes im2col + GEMM everywhere
// but depthwise; these functions describe float32 only.
#pragma once
#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

enum class ConvAlgorithm {
  Depthwise,             // groups == c_in == c_out: its own loops in conv.cpp, along output rows
  Depthwise3x3,          // conv_depthwise_3x3.h: 3x3 stride 1 on wide rows, rolling row sums
  DepthwiseBlocked,      // conv_depthwise_blocked.h: 8 channels per vector (forward: short output rows;
                         // backward-input where it is not a forward convolution; backward-weight)
  WinogradChannelsLast,  // conv_winograd_channels_last.h: 8 channels per vector (narrow layers, small maps)
  Winograd,              // conv_winograd.h: 8 tiles per vector, one GEMM per tile position
  Direct,                // conv_direct.h: the GEMM micro-kernel reading the padded image
  DirectPixelLanes,      // conv_weight_pixels.h (backward-weight): output pixels as the lanes, few output channels
  Im2colGemm             // im2col + sgemm (backward-input where it is not a forward convolution)
};

bool is_depthwise(const Conv2dShape& s);

// Forward: the channels-last Winograd where it is preferred, else the batched one, else direct.
ConvAlgorithm forward_algorithm(const Conv2dShape& s);
// Backward-input: at stride 1 it is the forward convolution of backward_input_forward_shape(s)
// (conv_direct.h), so it takes that shape's forward kernel, depthwise too; else im2col, or for
// depthwise the blocked scatter.
ConvAlgorithm backward_input_algorithm(const Conv2dShape& s);
// Backward-weight: depthwise on 8-channel blocks; else Winograd where winograd_weight_grad_preferred,
// else the direct kernel with pixels as the lanes where weight_grad_pixel_lanes_preferred, else
// the 16-channel direct one.
ConvAlgorithm backward_weight_algorithm(const Conv2dShape& s);

const char* algorithm_name(ConvAlgorithm a);

}  // namespace shrink::kernels::cpu
