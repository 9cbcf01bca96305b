// Float convolutions on the packed GEMM's micro-kernel without an im2col matrix
// (kernels/cpu/conv.cpp dispatches here).
//
// The im2col + sgemm path writes the whole column matrix col (K, P) and then packs it again
// into the GEMM's panels: two passes over a K x P array that is 9x the input for a 3x3
// convolution and, for CIFAR-sized layers, larger than L2. Here each work item (one image, a
// chunk of kConvChunk output pixels) builds its kKC x chunk slice of col in L1, one row at a
// time, and copies it straight into 16-wide B panels; W_g is packed into A panels once per
// call. The micro-kernel then writes the NCHW output rows directly (C's leading dimension is
// P). Every output element is summed in the same order as sgemm's (k blocks of kKC, each
// accumulated by multiply_panels), so results equal the im2col path bit for bit, on any
// thread count.
#pragma once
#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

// y = conv2d(x, w) + bias (bias may be null), any shape the im2col path takes.
void conv2d_forward_packed(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                           float* y);

// dW = sum over images of dy_g (cog, P) col_g^T (P, K): the pixels of all images are the
// GEMM's k axis, kKC at a time (a block may span images); dy_g is packed into A panels straight
// from NCHW and each 16-tap B panel is built from 16 rows of col over the block, transposed
// in L1. Threads own fixed panels of dW's columns, so the sum order is fixed.
void conv2d_backward_weight_packed(const Conv2dShape& s, const float* x, const float* dy, float* dw);

// True when dx of `s` can be computed as a forward convolution of dy (stride 1 and
// pad <= dilation (k - 1) on both axes): see conv2d_backward_input_as_forward.
bool backward_input_is_forward(const Conv2dShape& s);

// dx = conv2d(dy, W'), W'[g cig + ci, co, r, q] = W[g cog + co, ci, kh-1-r, kw-1-q] with padding
// dilation (k - 1) - pad: the transposed convolution of a stride-1 layer is a convolution with
// the kernel flipped and its channel roles swapped (its output size is h: out + d(k-1) - 2 pad).
// The forward kernel's k depth is cog kh kw here, where the im2col path's W^T dy product has
// k = cog only (16 for a ResNet-20 stage: the micro-kernel would mostly load and store C).
void conv2d_backward_input_as_forward(const Conv2dShape& s, const float* w, const float* dy,
                                      float* dx);

}  // namespace shrink::kernels::cpu
