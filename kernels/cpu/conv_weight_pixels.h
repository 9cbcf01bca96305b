// Backward-weight of a float convolution with output pixels as the vector lanes, for layers
// with few output channels (a pruned network's): dW[o, tap] = sum over images and output
// pixels of dy[o, pixel] x[tap + pixel]. conv_direct.h's backward-weight puts 16 output
// channels in the lanes (dy transposed into 16-channel panels), so an 8-channel layer, common
// after pruning, leaves half of every vector zero. Here a tile is 4 taps x 3 output channels,
// 12 vectors of 8 pixels' partial sums: per run of 8 pixels it loads the 3 channels' dy (read
// in place, NCHW: no transposed copy) and the 4 taps' inputs from the padded image
// (conv_padded.h, the same layout as the direct kernels), 7 loads for 12 multiply-adds (the
// 16-channel tile: 8 for 12). A row's last run of fewer than 8 pixels is masked, so maps whose
// rows are not a multiple of 8 pixels wide waste lanes; weight_grad_pixel_lanes_preferred has
// the measured bounds.
//
// Threads own whole tiles and pass over the images in order; each tile's vectors are summed
// across their lanes once, after the last image: every element's sum order is fixed whatever
// the thread count. Rounding: a sum of n out_h out_w products, as the 16-channel kernel.
#pragma once
#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

// Every non-depthwise float shape.
void conv2d_backward_weight_pixel_lanes(const Conv2dShape& s, const float* x, const float* dy, float* dw);
// Where it beats conv_direct.h's backward-weight (the .cpp has the measured bounds).
bool weight_grad_pixel_lanes_preferred(const Conv2dShape& s);

}  // namespace shrink::kernels::cpu
