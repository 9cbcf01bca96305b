// A data set in memory: a train and a test split of images and class labels, already
// normalised, ready for the DataLoader; or, for a token data set (vocab_size > 0), of int64
// token ids (N, T) in place of the images.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace shrink::datasets {

struct Split {
  Tensor images;  // float32 (N, C, H, W), standardised with the training set's statistics
  Tensor labels;  // int64 (N), class indices in [0, num_classes)
  std::int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

// How images are sized when a data set is loaded (datasets/image_options.h); 0 keeps what
// the files store.
struct ImageOptions {
  // Pads (H, W) to input_size x input_size, centred: (S - H) / 2 rows before, the rest
  // after (likewise for columns). Padding is black, i.e. raw pixel 0, whose value after
  // normalisation is (0 - mean_c) / std_c per channel, not 0. Smaller than stored: an error.
  std::int64_t input_size = 0;
  // Replicates a one-channel set to this many channels (grey to RGB: 3); equal to the
  // stored count is a no-op, any other change is an error.
  std::int64_t channels = 0;
};

struct Dataset {
  std::string name;     // "fashion-mnist", "mnist", or the spec that named it ("idx:DIR")
  std::string source;   // the directory the files came from, for logs and checkpoints
  Split train, test;
  std::int64_t num_classes = 0;
  Shape sample_shape;   // one image, (C, H, W) after ImageOptions; an MLP flattens it
  Shape stored_shape;   // one image as the files store it, (C, H, W)
  ImageOptions image;   // the sizing applied at load time (0: as stored), for checkpoints
  // Pixels of channel c (scaled to [0, 1]) were mapped to (x - channel_mean[c]) /
  // channel_std[c]. The constants come from the training split only, so the test split
  // never leaks into preprocessing; they are kept so a checkpoint can record how its
  // inputs were prepared. One entry per channel of sample_shape (replicated channels
  // repeat the stored channel's values).
  std::vector<double> channel_mean = {0.0};
  std::vector<double> channel_std = {1.0};
  // Over every training pixel of every stored channel: for a one-channel set exactly
  // channel_mean[0] / channel_std[0]; informative only for several channels.
  double mean = 0.0;
  double std = 1.0;
  // A token data set (datasets/sequence_task.h): the "images" are int64 ids (N, T), each in
  // [0, vocab_size); 0 for an image data set.
  std::int64_t vocab_size = 0;
};

// The normalised value of raw pixel 0 (black) in each channel of `ds`: what padding fills.
std::vector<float> black_values(const Dataset& ds);

// Paths of the four MNIST-style files of one data set.
struct IdxFiles {
  std::string train_images, train_labels, test_images, test_labels;
};

// Reads the four files and builds a Dataset: images (N, H, W) of unsigned bytes become
// float32 (N, 1, H, W) standardised with the training mean/std; labels become int64;
// num_classes = largest label + 1. Throws shrink::Error naming both files when an images
// file and its labels file disagree on the sample count, and on any malformed file.
Dataset load_idx_files(const std::string& name, const std::string& source, const IdxFiles& files);

}  // namespace shrink::datasets
