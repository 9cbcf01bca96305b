// Float convolutions whose micro-kernel reads the input image itself: no im2col matrix and no
// packed copy of it (kernels/cpu/conv.cpp dispatches here).
//
// Forward at stride 1: an output tile is 6 output channels x 16 pixels, two runs of 8
// consecutive pixels of an output row. For kernel tap k = (c, r, q) the 8 input values under
// a run are 8 consecutive floats of the zero-padded input plane c, at a fixed offset off[k]
// from the run's top-left corner, so the micro-kernel loads B rows straight from the padded
// image (one padded copy per image, kept in L2) where im2col would write and re-pack K = 9 c
// values per pixel. W is packed into the GEMM's 6-row A panels once per call.
//
// Backward-weight, any stride: dW^T (K, cog) = sum over pixels of x-taps (K) times dy (cog).
// A tile is 6 taps x 16 output channels; the 6 tap values of a pixel are broadcast straight
// from the padded image (at the 6 taps' offsets), dy is transposed once into 16-channel
// panels, and the tile stays in registers over every pixel of every image: one store per tile.
// Threads own whole tiles, so each element's sum order is fixed whatever the thread count.
#pragma once
#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

// Shapes conv2d_forward_direct takes: stride 1, not depthwise (conv.cpp's own loop is better
// at one channel per group).
bool forward_is_direct(const Conv2dShape& s);

void conv2d_forward_direct(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                           float* y);

// Any shape that is not depthwise.
void conv2d_backward_weight_direct(const Conv2dShape& s, const float* x, const float* dy, float* dw);

}  // namespace shrink::kernels::cpu
