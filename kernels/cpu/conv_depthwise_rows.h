// Depthwise convolutions (groups == c_in == c_out) one (n, c) plane at a time against its
// kh x kw filter, vectorised along output rows: every pass in float64 (the gradient checks),
// and in float whatever conv_algorithm.h gives the row loops (ConvAlgorithm::Depthwise). As a
// GEMM a depthwise layer would have m = 1. Each tap (r, q) adds w[c, r, q] times a shifted
// input row to an output row; inside tap_range the loop has no bounds test.
#pragma once
#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

// Forward: a 3x3 or 5x5 filter sums its taps in registers over a zero-bordered, column-phase
// split copy of the plane; other sizes tap by tap along the row.
template <class T>
void conv2d_forward_depthwise_rows(const Conv2dShape& s, const T* x, const T* w, const T* bias,
                                   const ConvEpilogue& post, T* y);
template <class T>
void conv2d_backward_input_depthwise_rows(const Conv2dShape& s, const T* w, const T* dy, T* dx);
// One thread owns each channel and sums its images in order: the same bits on any thread count.
template <class T>
void conv2d_backward_weight_depthwise_rows(const Conv2dShape& s, const T* x, const T* dy, T* dw);

}  // namespace shrink::kernels::cpu
