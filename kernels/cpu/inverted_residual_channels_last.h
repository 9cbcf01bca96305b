// MobileNetV2's inverted residual blocks (kernel_types.h InvertedResidualBlock) run one image at a
// time with channels as the vector lanes, for inference: the kernel behind the
// inverted_residual_chain kernel's fused runs (kernels/cpu/inverted_residual.cpp).
//
// Why: a pruned MobileNetV2 keeps 8-24 channels in its early blocks. Run as separate conv2d
// calls, each 1x1 convolution is a GEMM with k or m of 8-24 over NCHW planes (about a quarter of
// one core's FMA peak), the depthwise convolution another pass, and every map between them goes
// through memory. Here an image is copied once to channels-last (HWC, channels rounded up to a
// vector of 8, the padding lanes zero), then each block is
//   expand     rows of pixels x (c_in x hidden) weights, tiles of 4 x 24, 6 x 16 or 8 x 8
//              pixels x outputs in registers (8 sums or more: the FMA latency covered),
//              written with ReLU6 straight into a zero-bordered (h + 2) x (w + 2) map,
//   depthwise  runs of 8 output pixels of a row at once, each input vector loaded once for
//              every output of the run that reads it (maps narrower than 8: 8 pixels across rows),
//   project    as the expand, the shortcut added from the block's input as it is stored,
// and the output stays channels-last as the next block's input; only the chain's input and
// output are NCHW. An image's maps stay in the thread's caches from the first block to the last.
//
// No bound on the map size: with batch 8 at torchvision's 224x224, where one image's expanded map
// alone is 5 MB, two blocks in one call still ran 2.4x (1 thread) and 1.9x (2 threads) faster than
// their conv2d calls (bench/bench_conv_chains.cpp, mobilenetv2-224.features2-3).
//
// Rounding: each output is the same sum as the conv2d calls' (bias first, then the taps or input
// channels in order, one fused multiply-add each), but the conv2d kernels may order it
// differently: within a few ulps of them, not the same bits.
#pragma once
#include <cstdint>

#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

// Whether block `b` may be part of a fused run: 1x1 expand (stride 1, no padding; or none),
// 3x3 depthwise with padding 1, stride 1 or 2 and no dilation, 1x1 project, and a batch that gives
// every thread two images (fewer: the blocks run apart, where the conv2d kernels split an image).
bool inverted_residual_fuses(const InvertedResidualBlock& b);

// The blocks in turn, every one inverted_residual_fuses, float32: x is block 0's input (NCHW),
// y the last block's output (NCHW).
void inverted_residual_chain_channels_last(std::int64_t blocks, const InvertedResidualBlock* b, const float* x,
                                           float* y);

}  // namespace shrink::kernels::cpu
