// Winograd F(4x4, 3x3) forward convolution with channels as the vector lanes, for layers of at
// most 64 channels each way on small maps (16x16 and below), and for 8-output layers on larger
// ones: the layers of CIFAR ResNets' later stages and of pruned networks. There the batched
// Winograd of conv_winograd.h (tiles as the lanes) is starved: a 16x16 map has 16 tiles an
// image, and its per-position GEMMs have k = c_in (8 in a pruned stage: the C tile loaded and
// stored for every 8 multiply-adds), so it only matched the direct kernel on pruned layers.
//
// Each image is copied once, zero-padded, to channels-last (HWC, 8 channels a vector): a 6x6
// input tile is 36 contiguous vector loads per 8 channels, and its transform B^T d B
// (winograd_tiles.h input_1d) is 8 channels at once. Tiles go 8 at a time through three steps
// whose data stay in L1 up to 16 channels (V and M: 8 tiles x 36 positions x 16 channels,
// 18 KiB each; L2 beyond):
//   V[t][pos][c]  = (B^T d_t B)[pos], channel c
//   M[t][pos][o]  = sum_c V[t][pos][c] U[pos][c][o]   (U = G g G^T, broadcast V, 8 outputs a vector)
//   O[pixel][o]   = (A^T M_t A) + bias                 (channels-last output scratch)
// and the scratch is transposed back to NCHW every two tile rows. Per 8 x 8 channels a tile
// costs 36 x 8 = 288 multiply-adds (the direct kernel: 16 pixels x 72 taps = 1152) plus about
// 250 vector operations of transforms.
//
// Threads take whole images, or bands of tile rows of one image when the batch is small; each
// tile is computed the same way wherever it falls, so results do not depend on the thread count.
// Rounding: as conv_winograd.h (a few hundred ulps of the largest term).
#pragma once
#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

constexpr std::int64_t kWinogradChannelsLastMaxChannels = 64;  // each way

// winograd_applies (3x3, stride 1, ...) with at most 64 channels in and out.
bool winograd_channels_last_applies(const Conv2dShape& s);
// Applies, its tiles fill (winograd_tiles_fill), and it beats both the direct kernel and the
// batched Winograd (the .cpp has the measured bounds; with too few tiles for the batched one, it
// takes layers of 4 to 32 x 32 channel pairs, its filters kept across calls).
bool winograd_channels_last_preferred(const Conv2dShape& s);

// y = conv(x, w) + bias, then `post` (kernel_types.h) as each strip of y is stored.
void conv2d_forward_winograd_channels_last(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                                           float* y, const ConvEpilogue& post = {});

// A chain of residual blocks with identity shortcuts, for inference: block b computes
//   x_{b+1} = relu(conv(relu(conv(x_b, w1[b]) + b1[b]), w2[b]) + b2[b] + x_b)
// with shapes s1[b] (c -> m_b) and s2[b] (m_b -> c), every one 3x3, stride 1, padding 1; y is the
// last block's output. Apart, each convolution copies its input from NCHW to the padded
// channels-last layout and its output back: on a pruned CIFAR ResNet's 8-channel layers those
// transposes cost as much as the multiply-adds. In the chain each convolution's output transform
// adds the shortcut and writes the next convolution's padded channels-last input directly, one
// image at a time (its maps stay in the thread's caches), and only x and y are NCHW. The same
// sums, adds and ReLUs in the same order as this kernel's conv2d_forward_winograd_channels_last
// calls: the same bits as those (and as conv2d's where conv2d picks this kernel).
// residual_pair_fuses: whether one block (s1, s2) may be part of a chain (both convolutions
// prefer this kernel, or are 32x32 layers whose maps stay in L2 (the .cpp has the measured
// bounds), and the batch gives every thread two images).
bool residual_pair_fuses(const Conv2dShape& s1, const Conv2dShape& s2);
void conv2d_residual_chain_winograd_channels_last(std::int64_t blocks, const Conv2dShape* s1, const Conv2dShape* s2,
                                                  const float* x, const float* const* w1, const float* const* b1,
                                                  const float* const* w2, const float* const* b2, float* y);

}  // namespace shrink::kernels::cpu
