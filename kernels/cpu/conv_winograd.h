// Winograd F(4x4, 3x3) convolutions for float 3x3, stride-1, undilated, ungrouped layers
// (Lavin & Gray 2016): each 4x4 output tile is A^T [ sum_c (G g G^T) .* (B^T d B) ] A over
// 6x6 input tiles d, 36 multiplies per channel pair where the direct kernel spends 144.
//
// Tiles are numbered over the whole batch and taken 8 to a vector (winograd_tiles.h): on
// small maps a vector spans tile rows and images (gathers), so no lane is wasted on a short
// row. Each image is padded with its columns split by phase modulo 4, so 8 tiles side by side
// read 8 consecutive floats.
//
// Forward (conv_winograd.cpp): U[pos] = G g G^T packed as A panels once per call; per chunk
// of tiles the input transform writes V[pos] straight into the GEMM's 16-wide B panels
// (k = input channel), the 36 products run on multiply_panels, the output transform adds the
// bias. Threads take whole blocks of images, or share each step when there are too few.
// Backward-input at stride 1 is this forward on the flipped kernel (conv_direct.h).
//
// Weight gradient (conv_winograd_weight.cpp): dU[pos] = sum over tiles of (A dY A^T)[pos]
// V[pos]^T, one GEMM per position with tiles as k, then dw = G^T dU G.
//
// Rounding: Winograd's transforms scale values by up to 8x and 1/24 (the points 0, +-1, +-2),
// so outputs differ from the direct sum by a few hundred ulps of the largest term, not a few.
#pragma once
#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

// 3x3, stride 1, dilation 1, groups 1, padding <= 2.
bool winograd_applies(const Conv2dShape& s);
// Applies, and its tiles waste at most half their products on the map's edge.
bool winograd_tiles_fill(const Conv2dShape& s);
// Tiles fill, and the call has enough of them (8 or more over the batch) for the batched kernel
// to pay for reading U, 4x the weights (and transforming it where filter_cache.h has not kept it).
bool winograd_tiles_pay(const Conv2dShape& s);
// Tiles pay, and the batched Winograd beats the direct kernel: 16+ channels each way, or fewer
// on large maps (the .cpp has the measured bounds). conv2d asks the channels-last Winograd
// (conv_winograd_channels_last.h) first: where both are preferred, that one runs.
bool winograd_preferred(const Conv2dShape& s);
// The weight gradient's products have k = tiles and m, n = the channel counts: below 32
// channels each way their GEMMs are too thin to beat the direct kernel (measured, bench_conv
// conv_bwd_weight_direct).
bool winograd_weight_grad_preferred(const Conv2dShape& s);

// y = conv(x, w) + bias, then `post` (kernel_types.h) as each output is stored.
void conv2d_forward_winograd(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                             float* y, const ConvEpilogue& post = {});

// The weight gradient in the same transforms: dU[pos] = sum over tiles of (A dY A^T)[pos]
// V[pos]^T (one GEMM per position, k = tiles), then dw = G^T dU G.
void conv2d_backward_weight_winograd(const Conv2dShape& s, const float* x, const float* dy, float* dw);

}  // namespace shrink::kernels::cpu
