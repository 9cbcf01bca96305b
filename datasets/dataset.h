// A data set in memory: a train and a test split of images and class labels, already
// normalised, ready for the DataLoader. Image-classification only, as every data set the
// project trains on is.
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace shrink::datasets {

struct Split {
  Tensor images;  // float32 (N, C, H, W), standardised with the training set's statistics
  Tensor labels;  // int64 (N), class indices in [0, num_classes)
  std::int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

struct Dataset {
  std::string name;     // "fashion-mnist", "mnist", or the spec that named it ("idx:DIR")
  std::string source;   // the directory the files came from, for logs and checkpoints
  Split train, test;
  std::int64_t num_classes = 0;
  Shape sample_shape;   // one image, (C, H, W); an MLP flattens it to C*H*W features
  // Pixels (scaled to [0, 1]) were mapped to (x - mean) / std. Both constants come from
  // the training split only, so the test split never leaks into preprocessing; they are
  // kept so a checkpoint can record how its inputs were prepared.
  double mean = 0.0;
  double std = 1.0;
};

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
