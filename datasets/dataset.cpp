#include "datasets/dataset.h"

#include <algorithm>
#include <cmath>

#include "datasets/idx.h"

namespace shrink::datasets {

namespace {

struct RawSplit {
  IdxArray images;  // (N, H, W) unsigned bytes
  IdxArray labels;  // (N) unsigned bytes
};

RawSplit read_split(const std::string& images_path, const std::string& labels_path) {
  RawSplit raw{read_idx(images_path), read_idx(labels_path)};
  SHRINK_CHECK(raw.images.dims.size() == 3, images_path,
               ": expected images of shape (N, H, W), the header has dimensions ",
               shape_str(raw.images.dims));
  SHRINK_CHECK(raw.labels.dims.size() == 1, labels_path,
               ": expected labels of shape (N), the header has dimensions ",
               shape_str(raw.labels.dims));
  SHRINK_CHECK(raw.images.dims[0] == raw.labels.dims[0], "sample count mismatch: ", images_path,
               " has ", raw.images.dims[0], " images but ", labels_path, " has ",
               raw.labels.dims[0], " labels");
  return raw;
}

Tensor to_labels(const IdxArray& raw) {
  std::vector<std::int64_t> values(raw.data.begin(), raw.data.end());
  return Tensor::from_vector(values, {raw.dims[0]});
}

// Maps bytes to (byte / 255 - mean) / std as float32 (N, 1, H, W).
Tensor to_images(const IdxArray& raw, double mean, double std) {
  Tensor images = Tensor::empty({raw.dims[0], 1, raw.dims[1], raw.dims[2]}, DType::Float32);
  float* out = images.data<float>();
  // One table of 256 values keeps every pixel's arithmetic identical and cheap.
  float table[256];
  for (int b = 0; b < 256; ++b) table[b] = static_cast<float>((b / 255.0 - mean) / std);
  for (std::size_t i = 0; i < raw.data.size(); ++i) out[i] = table[raw.data[i]];
  return images;
}

}  // namespace

Dataset load_idx_files(const std::string& name, const std::string& source, const IdxFiles& files) {
  RawSplit train = read_split(files.train_images, files.train_labels);
  RawSplit test = read_split(files.test_images, files.test_labels);
  SHRINK_CHECK(train.images.dims[1] == test.images.dims[1] &&
                   train.images.dims[2] == test.images.dims[2],
               name, ": train images ", files.train_images, " are ",
               shape_str({train.images.dims[1], train.images.dims[2]}), " but test images ",
               files.test_images, " are ", shape_str({test.images.dims[1], test.images.dims[2]}));
  SHRINK_CHECK(!train.images.data.empty(), name, ": ", files.train_images,
               " holds no pixels; the normalisation statistics need a non-empty training set");
  SHRINK_CHECK(!test.images.data.empty(), name, ": ", files.test_images,
               " holds no samples; accuracy and loss on an empty test split mean nothing");

  // Mean and standard deviation over every training pixel, in [0, 1] units, summed in
  // double from a histogram so the result does not depend on summation order.
  std::uint64_t histogram[256] = {};
  for (std::uint8_t b : train.images.data) ++histogram[b];
  double sum = 0.0, sum_sq = 0.0;
  for (int b = 0; b < 256; ++b) {
    const double v = b / 255.0;
    sum += v * static_cast<double>(histogram[b]);
    sum_sq += v * v * static_cast<double>(histogram[b]);
  }
  const double count = static_cast<double>(train.images.data.size());
  const double mean = sum / count;
  const double variance = std::max(sum_sq / count - mean * mean, 0.0);
  // A constant image set has no spread to divide by; leave the scale alone then.
  const double std = variance > 1e-12 ? std::sqrt(variance) : 1.0;

  Dataset ds;
  ds.name = name;
  ds.source = source;
  ds.mean = mean;
  ds.std = std;
  ds.channel_mean = {mean};
  ds.channel_std = {std};
  ds.sample_shape = {1, train.images.dims[1], train.images.dims[2]};
  ds.stored_shape = ds.sample_shape;
  ds.train = {to_images(train.images, mean, std), to_labels(train.labels)};
  ds.test = {to_images(test.images, mean, std), to_labels(test.labels)};
  int max_label = -1;
  for (auto b : train.labels.data) max_label = std::max<int>(max_label, b);
  for (auto b : test.labels.data) max_label = std::max<int>(max_label, b);
  ds.num_classes = max_label + 1;
  return ds;
}

std::vector<float> black_values(const Dataset& ds) {
  SHRINK_CHECK(ds.channel_mean.size() == ds.channel_std.size() && !ds.channel_mean.empty(), ds.name,
               ": per-channel statistics missing (", ds.channel_mean.size(), " means, ",
               ds.channel_std.size(), " deviations)");
  std::vector<float> values;
  for (std::size_t c = 0; c < ds.channel_mean.size(); ++c)
    values.push_back(static_cast<float>((0.0 - ds.channel_mean[c]) / ds.channel_std[c]));
  return values;
}

}  // namespace shrink::datasets
