// Depthwise 3x3 stride-1 forward on rows wider than 8 (MobileNetV2's 32x32 and 16x16 layers),
// with rolling row accumulators.
//
// conv.cpp's fixed-size loop sums each output vector's 9 taps from 9 loads of a padded copy of
// the plane. Here a column chunk of 8 outputs is swept down the plane: each input row is loaded
// once at its 3 column shifts and feeds the 3 output rows it touches (tap rows 2, 1, 0), whose
// sums are kept in 3 rotating registers; an output row is stored when its tap row 2 is in. That
// is 3 loads per 8 outputs instead of 9, and no padded copy: the first and last chunks of a row
// load with lane masks (a masked lane reads 0, as the copy's border did), and the rows above and
// below the image are zero vectors. Each output is summed in the row loops' order (the bias,
// then the taps row by row, one FMA each); the epilogue (residual, ReLU/ReLU6) is applied in
// the store (conv_epilogue.h). The sweeps read a plane a column chunk at a time, which the
// hardware prefetcher does not follow, so the first sweep of each plane prefetches the next
// plane's rows. bench_conv, 1 thread, batch 32, old and new alternating (5 rounds, fastest):
// 32x32x144 1.71 ms against the copy's 1.93 ms (2.29 ms without the prefetch), 16x16x192 639
// against 772 us; a keep-0.25 MobileNetV2 (residual too) ran 5.1-5.4 ms a batch of 64 against
// 5.4-5.6 ms at 2 threads.
#pragma once
#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

// Depthwise (groups == c_in == c_out), 3x3, stride 1, no dilation, padding 0 or 1 each way. Any
// row width runs; forward_algorithm sends rows of at most 8 to conv_depthwise_blocked.h first.
bool depthwise_3x3_rows_applies(const Conv2dShape& s);

void conv2d_forward_depthwise_3x3(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                                  const ConvEpilogue& post, float* y);

}  // namespace shrink::kernels::cpu
