// Training-time augmentation of image batches, run by the DataLoader on its worker thread
// (DataLoader::Transform): the random crop with zero padding and the horizontal flip of
// the CIFAR training recipe (He et al. 2016, sec. 4.2: "4 pixels are padded on each side,
// and a 32x32 crop is randomly sampled from the padded image or its horizontal flip").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/loader.h"

namespace shrink::datasets {

struct Augmentation {
  std::int64_t crop_padding = 0;  // pad each side by this much, then crop back to (H, W)
  bool horizontal_flip = false;   // mirror left-right with probability 1/2
  bool enabled() const { return crop_padding > 0 || horizontal_flip; }
};

// The largest crop padding accepted.
constexpr std::int64_t kMaxCropPadding = 64;

// Parses a comma list of `crop:N` (N >= 0 pixels of padding) and `flip`, or `none`:
// "crop:4,flip". Throws shrink::Error naming the bad item.
Augmentation parse_augmentation(const std::string& text);
// The text parse_augmentation reads back ("none" when nothing is enabled).
std::string augmentation_str(const Augmentation& a);

// A transform for float32 (B, C, H, W) batches: per sample, a crop offset (dy, dx) drawn
// uniformly from [0, 2p]^2 picks the window of the padded image (fill outside the
// image), then a flip with probability 1/2. `fill` holds one value per channel (or one
// for all): the normalised value of raw pixel 0 (black_values), so padding is black as
// in the raw images. Every draw comes from the transform's Generator, so a seed gives
// the same batches whatever the thread timing. Throws shrink::Error for a batch that is
// not float32 (B, C, H, W) or whose channel count disagrees with `fill`.
DataLoader::Transform augmentation_transform(const Augmentation& augmentation, std::vector<float> fill);

}  // namespace shrink::datasets
