#include "datasets/image_options.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace shrink::datasets {

namespace {

// (N, C, H, W) float32 -> (N, channels, out_h, out_w): the stored channel c (or channel 0
// for every output channel when replicating) placed at ((out_h - H) / 2, (out_w - W) / 2),
// the rest filled with fill[c].
Tensor resize(const Tensor& images, std::int64_t channels, std::int64_t out_h, std::int64_t out_w,
              const std::vector<float>& fill) {
  const std::int64_t n = images.size(0), stored_c = images.size(1), h = images.size(2), w = images.size(3);
  const std::int64_t top = (out_h - h) / 2, left = (out_w - w) / 2;
  Tensor out = Tensor::empty({n, channels, out_h, out_w}, DType::Float32);
  const float* src = images.data<float>();
  float* dst = out.data<float>();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < channels; ++c) {
      const float* plane = src + (i * stored_c + (stored_c == 1 ? 0 : c)) * h * w;
      float* target = dst + (i * channels + c) * out_h * out_w;
      if (out_h != h || out_w != w) std::fill(target, target + out_h * out_w, fill[c]);
      for (std::int64_t y = 0; y < h; ++y)
        std::memcpy(target + (top + y) * out_w + left, plane + y * w, static_cast<std::size_t>(w) * sizeof(float));
    }
  return out;
}

}  // namespace

void apply_image_options(Dataset& ds, const ImageOptions& image) {
  SHRINK_CHECK(ds.stored_shape.size() == 3 && ds.sample_shape == ds.stored_shape, ds.name,
               ": image options apply once, to images as stored (C, H, W); sample shape ",
               shape_str(ds.sample_shape), ", stored ", shape_str(ds.stored_shape));
  const std::int64_t stored_c = ds.stored_shape[0], h = ds.stored_shape[1], w = ds.stored_shape[2];
  SHRINK_CHECK(image.input_size >= 0 && image.input_size <= kMaxInputSize, "--input-size ", image.input_size,
               ": needs 0 (as stored) to ", kMaxInputSize);
  SHRINK_CHECK(image.channels >= 0 && image.channels <= kMaxChannels, "--channels ", image.channels,
               ": needs 0 (as stored) to ", kMaxChannels);
  const std::int64_t size = image.input_size;
  SHRINK_CHECK(size == 0 || (size >= h && size >= w), "--input-size ", size, " is smaller than the ", h, "x", w,
               " images of ", ds.name, "; it pads images to a larger square and never crops them");
  const std::int64_t channels = image.channels == 0 ? stored_c : image.channels;
  SHRINK_CHECK(channels == stored_c || stored_c == 1, "--channels ", channels, ": ", ds.name, " has ", stored_c,
               " channels; only a one-channel (grey) set can be replicated to more channels");
  ds.image = image;
  const std::int64_t side_h = size == 0 ? h : size, side_w = size == 0 ? w : size;
  if (channels == stored_c && side_h == h && side_w == w) return;
  const std::int64_t split_bytes =
      std::max(ds.train.size(), ds.test.size()) * channels * side_h * side_w * static_cast<std::int64_t>(sizeof(float));
  SHRINK_CHECK(split_bytes <= kMaxSizedSplitBytes, "--input-size ", size, " --channels ", channels, ": ", ds.name,
               " would need ", split_bytes, " bytes for one split, more than the ", kMaxSizedSplitBytes, " allowed");

  std::vector<float> fill = black_values(ds);
  SHRINK_CHECK(static_cast<std::int64_t>(fill.size()) == stored_c, ds.name, ": ", fill.size(),
               " channel statistics for ", stored_c, " channels");
  fill.resize(static_cast<std::size_t>(channels), fill[0]);  // replicated channels repeat channel 0
  ds.channel_mean.resize(static_cast<std::size_t>(channels), ds.channel_mean[0]);
  ds.channel_std.resize(static_cast<std::size_t>(channels), ds.channel_std[0]);
  // Each stored split is released as soon as its sized copy exists: the peak is one split twice.
  ds.train.images = resize(ds.train.images, channels, side_h, side_w, fill);
  ds.test.images = resize(ds.test.images, channels, side_h, side_w, fill);
  ds.sample_shape = {channels, side_h, side_w};
}

}  // namespace shrink::datasets
