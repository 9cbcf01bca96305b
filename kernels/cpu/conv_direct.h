// Float convolutions whose micro-kernel reads the input image itself: no im2col matrix and no
// packed copy of it. kernels/cpu/conv.cpp sends every float convolution that is not depthwise
// here (depthwise has its own loops there); the im2col + GEMM path serves float64.
//
// Each image is copied once, zero-padded, with its columns split by phase modulo the stride
// (Padded in the .cpp), so that for every kernel tap k = (c, r, q) the inputs that 8
// consecutive output pixels of a row meet are 8 consecutive floats at a fixed offset off[k]
// from the pixels' receptive-field corner, at any stride and dilation. (Backward-weight of a
// 1x1 unpadded stride-1 convolution skips the copy: the image is already in that layout.) Where
// output rows are 4 pixels or fewer (4x4 maps), 8-pixel runs of a row would be half empty: the
// forward copies the image's im2col columns instead (tap k's row of out_h out_w pixels, taken
// from the padded copy) and runs them as one row, off[k] = k out_h out_w. A strided 1x1 unpadded
// convolution (a ResNet shortcut) copies the pixels it reads, subsampled, as one row.
//
// Forward: an output tile is 6 output channels x 16 pixels (two runs of 8 pixels); the
// micro-kernel loads its B rows straight from the padded image, where im2col would write and
// re-pack K = c kh kw values per pixel (for CIFAR layers the packing cost as much as the
// multiply-adds). W is packed into the GEMM's 6-row A panels once per call; k runs in blocks of
// kKC, each accumulated onto the last, so every output element is summed exactly as the packed
// sgemm sums it (the same bits as the im2col path).
//
// Backward-input at stride 1 is the forward convolution of dy with the kernel flipped and the
// channel roles swapped (padding d (k - 1) - pad): its k depth is cog kh kw where im2col's
// W^T dy has k = cog (16 in a ResNet-20 stage: the micro-kernel would mostly load and store C).
//
// Backward-weight, any stride: dW^T (K, cog) = sum over pixels of tap values (K) times dy
// (cog). A tile is 6 taps x 16 output channels; the taps' values are broadcast straight from
// the padded image and dy is transposed once into 16-channel panels. Threads own whole tiles
// and pass over the images in order, so each element's sum order is fixed whatever the thread
// count.
#pragma once
#include <vector>

#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

// Every non-depthwise shape; the bias and `post` (kernel_types.h) in the tiles' last stores.
void conv2d_forward_direct(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                           float* y, const ConvEpilogue& post = {});
void conv2d_backward_weight_direct(const Conv2dShape& s, const float* x, const float* dy, float* dw);

// True when dx of `s` is a forward convolution of dy (stride 1, pad <= dilation (k - 1)).
bool backward_input_is_forward(const Conv2dShape& s);
// That forward convolution's shape: channel roles swapped, input dy's size, padding
// dilation (k - 1) - pad (its output size is h).
Conv2dShape backward_input_forward_shape(const Conv2dShape& s);
// The forward convolution that gives dx: dx = conv2d(dy, W') with
// W'[g cig + ci, co, r, q] = W[g cog + co, ci, kh-1-r, kw-1-q] (written to `flipped`) under
// backward_input_forward_shape(s), which it returns.
Conv2dShape backward_input_as_forward(const Conv2dShape& s, const float* w, std::vector<float>& flipped);

}  // namespace shrink::kernels::cpu
