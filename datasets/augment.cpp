#include "datasets/augment.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/error.h"

namespace shrink::datasets {

namespace {

// One sample (C, H, W) in place: the crop window at (dy, dx) of the image padded by `pad`
// (so source row y + dy - pad, column x + dx - pad), mirrored when `flip`. `scratch`
// holds a copy of the sample; rows are moved with memcpy, only the border is filled.
void augment_sample(float* sample, float* scratch, std::int64_t channels, std::int64_t h, std::int64_t w,
                    std::int64_t pad, std::int64_t dy, std::int64_t dx, bool flip, const std::vector<float>& fill) {
  const std::int64_t shift_y = dy - pad, shift_x = dx - pad;
  if (shift_y != 0 || shift_x != 0) {
    std::memcpy(scratch, sample, static_cast<std::size_t>(channels * h * w) * sizeof(float));
    // Output columns [x0, x1) read source columns [x0 + shift_x, x1 + shift_x), all inside.
    const std::int64_t x0 = std::max<std::int64_t>(0, -shift_x), x1 = std::min(w, w - shift_x);
    for (std::int64_t c = 0; c < channels; ++c) {
      const float value = fill[fill.size() == 1 ? 0 : c];
      for (std::int64_t y = 0; y < h; ++y) {
        float* out = sample + (c * h + y) * w;
        const std::int64_t sy = y + shift_y;
        if (sy < 0 || sy >= h || x0 >= x1) {
          std::fill(out, out + w, value);
          continue;
        }
        std::fill(out, out + x0, value);
        std::memcpy(out + x0, scratch + (c * h + sy) * w + x0 + shift_x, static_cast<std::size_t>(x1 - x0) * sizeof(float));
        std::fill(out + x1, out + w, value);
      }
    }
  }
  if (flip)
    for (std::int64_t row = 0; row < channels * h; ++row) std::reverse(sample + row * w, sample + (row + 1) * w);
}

bool parse_count(const std::string& text, std::int64_t& value) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end && !text.empty();
}

}  // namespace

Augmentation parse_augmentation(const std::string& text) {
  Augmentation a;
  if (text == "none" || text.empty()) return a;
  bool crop_seen = false;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    if (item == "flip") {
      SHRINK_CHECK(!a.horizontal_flip, "augmentation `", text, "`: `flip` given twice");
      a.horizontal_flip = true;
    } else if (item.rfind("crop:", 0) == 0) {
      SHRINK_CHECK(!crop_seen, "augmentation `", text, "`: `crop:N` given twice");
      crop_seen = true;
      std::int64_t pad = -1;
      SHRINK_CHECK(parse_count(item.substr(5), pad) && pad >= 0 && pad <= kMaxCropPadding, "augmentation `", text,
                   "`: `", item, "` needs a padding of 0 to ", kMaxCropPadding, " pixels, as in crop:4");
      a.crop_padding = pad;
    } else {
      fail("augmentation `", text, "`: unknown item `", item, "`; expected a comma list of crop:N and flip "
           "(e.g. crop:4,flip), or none");
    }
    start = comma + 1;
  }
  return a;
}

std::string augmentation_str(const Augmentation& a) {
  std::string text;
  if (a.crop_padding > 0) text = "crop:" + std::to_string(a.crop_padding);
  if (a.horizontal_flip) text += text.empty() ? "flip" : ",flip";
  return text.empty() ? "none" : text;
}

DataLoader::Transform augmentation_transform(const Augmentation& augmentation, std::vector<float> fill) {
  SHRINK_CHECK(augmentation.crop_padding >= 0 && augmentation.crop_padding <= kMaxCropPadding,
               "augmentation: crop padding ", augmentation.crop_padding, " is outside 0 to ", kMaxCropPadding);
  SHRINK_CHECK(!fill.empty(), "augmentation: needs a fill value (the normalised black) per channel");
  return [augmentation, fill = std::move(fill)](Batch& batch, Generator& gen) {
    const Tensor& images = batch.images;
    SHRINK_CHECK(images.dtype() == DType::Float32 && images.dim() == 4,
                 "augmentation: needs float32 images (B, C, H, W), got ", shape_str(images.shape()));
    const std::int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
    SHRINK_CHECK(fill.size() == 1 || static_cast<std::int64_t>(fill.size()) == c, "augmentation: ", fill.size(),
                 " fill values for images of ", c, " channels");
    const std::int64_t pad = augmentation.crop_padding;
    std::vector<float> scratch(static_cast<std::size_t>(c * h * w));
    float* data = images.data<float>();
    const auto span = static_cast<std::uint64_t>(2 * pad + 1);
    for (std::int64_t i = 0; i < n; ++i) {
      // The draws per sample are fixed by the options, so sample i's are the same whatever
      // the other samples drew.
      const auto dy = pad > 0 ? static_cast<std::int64_t>(gen.next_below(span)) : 0;
      const auto dx = pad > 0 ? static_cast<std::int64_t>(gen.next_below(span)) : 0;
      const bool flip = augmentation.horizontal_flip && gen.next_below(2) == 1;
      augment_sample(data + i * c * h * w, scratch.data(), c, h, w, pad, dy, dx, flip, fill);
    }
  };
}

}  // namespace shrink::datasets
