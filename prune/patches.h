// A convolution as a matrix product, for the criteria and the refit that treat a consumer
// conv like a Linear on its input patches: the unfolded input (rows: image positions,
// columns: the weight's (c, ky, kx)) times the kernel as (out, in * kh * kw).
#pragma once
#include <cstdint>
#include <limits>

#include "core/tensor.h"
#include "nn/conv.h"

namespace shrink::prune {

// Rows kept when a map of `total` positions is thinned to at most `max_rows`: every
// row_stride-th, from 0.
std::int64_t row_stride(std::int64_t total, std::int64_t max_rows);

// The conv's input (N, C, H, W) as patches (rows, C * kh * kw), float32 on the CPU: row
// r * stride is image b's output position (oy, ox) in (b, oy, ox) order, zero where a window
// reaches into the padding. Ungrouped convs only.
Tensor unfold_patches(const Tensor& input, const nn::Conv2d& conv, std::int64_t stride = 1);

// A conv output (N, out, oh, ow) as rows (N * oh * ow, out) in the same (b, oy, ox) order,
// every stride-th kept; a 2-D (N, out) is returned as it is.
Tensor output_rows(const Tensor& output, std::int64_t stride = 1);

}  // namespace shrink::prune
