// Depthwise convolutions on blocks of 8 channels (depthwise_blocks.h): forward for maps whose
// output rows are short, backward-input where it is not a forward convolution, backward-weight.
//
// The depthwise row loops (conv_depthwise_rows.h) vectorise along an output row: a row of 4 or 8 pixels is one
// partial vector plus a loop's setup, and every plane pays its own padded copy and setup, so a
// MobileNetV2's 8x8 and 4x4 layers ran at a fraction of the FMA rate (the 3x3 depthwise was 43%
// of a pruned MobileNetV2's inference, perf, 1 thread). Here a vector holds one pixel of 8
// channels, as in channels-last layouts: each block of 8 planes is transposed into a
// zero-bordered channels-last copy (hp x wp pixels of 8 floats, one per thread), every output
// pixel is then kh kw full-width FMAs whatever the map's width, stride or dilation, and 8 output
// pixels at a time are transposed back to the planes, with the epilogue (bias, residual,
// ReLU/ReLU6) in the store. A last block of fewer than 8 channels runs with zero lanes.
// Each output is summed in the row loops' order (the bias, then the taps row by row, one FMA
// each): the same bits wherever the compiler contracts the row loops' multiply-adds to FMAs.
#pragma once
#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

// Depthwise (groups == c_in == c_out) with output rows too short for the row loops.
bool depthwise_blocked_preferred(const Conv2dShape& s);

void conv2d_forward_depthwise_blocked(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                                      const ConvEpilogue& post, float* y);

// Backward-input of a depthwise layer that is not a forward convolution (stride > 1, or padding
// past the kernel's reach; at stride 1 conv.cpp runs the forward kernels on the flipped
// kernel): each output pixel's gradient, 8 channels a vector, is added to its taps' inputs in
// a zeroed channels-last padded copy, whose interior is then transposed back to the planes.
// The row loops had walked one plane at a time with scalar strided stores: 0.1-0.7x PyTorch on
// MobileNetV2's strided and small layers (docs/performance.md, before).
void conv2d_backward_input_depthwise_blocked(const Conv2dShape& s, const float* w, const float* dy, float* dx);

// Backward-weight of a depthwise layer: the input block in a channels-last padded copy, dy
// transposed to channels-last, and each tap's 8-channel sum of dy x over the output pixels kept
// in a register (9 taps at a time) through each image. One thread owns each block and sums its
// images in order: the same bits on any thread count. The row loops' per-row dot products had
// run at 2-6% of the FMA peak on MobileNetV2's layers.
void conv2d_backward_weight_depthwise_blocked(const Conv2dShape& s, const float* x, const float* dy, float* dw);

}  // namespace shrink::kernels::cpu
