// CIFAR-10, binary version (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html):
// data_batch_1.bin ... data_batch_5.bin (training, 10000 images each) and test_batch.bin,
// each a plain sequence of 3073-byte records: one label byte (0..9), then the 32x32 image
// as 1024 red, 1024 green and 1024 blue bytes, each plane row-major.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace shrink::datasets {

constexpr std::int64_t kCifarSide = 32;
constexpr std::int64_t kCifarChannels = 3;
constexpr std::int64_t kCifarPixels = kCifarChannels * kCifarSide * kCifarSide;  // 3072
constexpr std::int64_t kCifarRecordBytes = 1 + kCifarPixels;                     // 3073
constexpr std::int64_t kCifarClasses = 10;
// The most records one split may hold: over five times the official training split
// (50000), so a wrong file is refused before its float copy (12 KiB a record) is allocated.
constexpr std::int64_t kMaxCifarRecords = std::int64_t{1} << 18;

// The six files of the binary version, found in DIR or in DIR/cifar-10-batches-bin (the
// folder the official tarball extracts to).
struct CifarFiles {
  std::vector<std::string> train;  // data_batch_1.bin ... data_batch_5.bin, in that order
  std::string test;                // test_batch.bin
};

// The names of the files `dir` lacks ("" when it holds all six), looking in `dir` and
// in its cifar-10-batches-bin subfolder; fills `files` when none is missing.
std::string missing_cifar10_files(const std::string& dir, CifarFiles& files);
// As above; throws naming the directory and the missing files.
CifarFiles find_cifar10_files(const std::string& dir);

// Records read from one or more files, in file order.
struct CifarRecords {
  Tensor images;  // float32 (N, 3, 32, 32) holding the raw byte values 0..255
  Tensor labels;  // int64 (N), in 0..9
};

// Reads every record of `paths`, streaming each file into the output tensor (no copy of
// a whole file). Throws shrink::Error naming the file: cannot open; a size that is not a
// whole number of 3073-byte records (with the size and the record size); a label above 9
// (with the record index); more than kMaxCifarRecords records in all; a read that ends
// early (the file shrank while being read).
CifarRecords read_cifar10(const std::vector<std::string>& paths);

// Reads both splits and builds a Dataset: float32 (N, 3, 32, 32) standardised per channel
// with the training split's mean and standard deviation; num_classes 10. Throws when a
// split holds no records.
Dataset load_cifar10_files(const std::string& name, const std::string& source, const CifarFiles& files);

}  // namespace shrink::datasets
