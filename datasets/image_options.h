// Sizing a loaded data set's images to what a model takes (ImageOptions, dataset.h): zero
// padding to a larger square (28x28 Fashion-MNIST to the 32x32 of CIFAR-style models) and
// replication of a grey channel (to the three a model built for RGB expects).
#pragma once
#include "datasets/dataset.h"

namespace shrink::datasets {

// The largest --input-size accepted, and the most channels --channels may ask for.
constexpr std::int64_t kMaxInputSize = 1024;
constexpr std::int64_t kMaxChannels = 64;
// The most bytes one split may grow to by sizing (16 GiB): a refusal, not an allocation failure.
constexpr std::int64_t kMaxSizedSplitBytes = std::int64_t{1} << 34;

// Applies `image` to both splits of `ds` (a no-op for zeros), updating sample_shape, the
// per-channel statistics and ds.image. Padding takes the normalised value of raw pixel 0
// in each channel (black_values), so a padded border looks like a black frame to the
// model. Throws shrink::Error naming --input-size when it is below the stored height or
// width or above kMaxInputSize, and naming --channels for a change other than 1 -> C.
void apply_image_options(Dataset& ds, const ImageOptions& image);

}  // namespace shrink::datasets
