// Winograd F(4x4, 3x3) forward convolution for narrow layers: at most 16 channels each way,
// the widths a pruned CIFAR ResNet runs at (8-channel stages), where the batched Winograd of
// conv_winograd.h spends its time moving V and M through L2 and its products have k = c_in = 8
// (the C tile loaded and stored for every 8 multiply-adds), and so only matched the direct kernel.
//
// Here the vector lanes are channels, not tiles. Each image is copied once, zero-padded, to
// channels-last (HWC, 8 channels a vector): a 6x6 input tile is 36 contiguous vector loads per
// 8 channels, and its transform B^T d B (winograd_tiles.h input_1d) is 8 channels at once. Tiles
// go 8 at a time through three steps whose data stay in L1 (V and M: 8 tiles x 36 positions x
// 16 channels, 18 KiB each):
//   V[t][pos][c]  = (B^T d_t B)[pos], channel c
//   M[t][pos][o]  = sum_c V[t][pos][c] U[pos][c][o]   (U = G g G^T, broadcast V, 8 outputs a vector)
//   O[pixel][o]   = (A^T M_t A) + bias                 (channels-last output scratch)
// and the scratch is transposed back to NCHW at the end of the image. Per 8-channel pair a tile
// costs 36 x 8 = 288 multiply-adds (the direct kernel: 16 pixels x 72 taps = 1152) plus about
// 250 vector operations of transforms.
//
// Threads take whole images, or bands of tile rows of one image when the batch is small; each
// tile is computed the same way wherever it falls, so results do not depend on the thread count.
// Rounding: as conv_winograd.h (a few hundred ulps of the largest term).
#pragma once
#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

constexpr std::int64_t kWinogradNarrowMaxChannels = 16;

// winograd_applies (3x3, stride 1, ...) with at most 16 channels in and out.
bool winograd_narrow_applies(const Conv2dShape& s);
// Applies, its tiles pay (winograd_tiles_pay), and it beats both the direct kernel and the
// batched Winograd (the .cpp has the measured bounds).
bool winograd_narrow_preferred(const Conv2dShape& s);

void conv2d_forward_winograd_narrow(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                                    float* y);

}  // namespace shrink::kernels::cpu
