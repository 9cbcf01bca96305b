#include "datasets/cifar10.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace shrink::datasets {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTrainNames[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                       "data_batch_4.bin", "data_batch_5.bin"};
constexpr const char* kTestName = "test_batch.bin";
constexpr const char* kTarballFolder = "cifar-10-batches-bin";

// Closes the file on every path out, errors included.
struct File {
  std::FILE* f;
  explicit File(std::FILE* file) : f(file) {}
  ~File() {
    if (f) std::fclose(f);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
};

std::FILE* open_file(const std::string& path) {
  errno = 0;
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail(path, ": cannot open: ", errno ? std::strerror(errno) : "unknown error");
  return file;
}

// The file's record count, from its size (seek to the end: works for pipes-turned-files
// such as /proc/self/fd/N too, unlike a directory lookup).
std::int64_t record_count(const std::string& path) {
  File file(open_file(path));
  if (std::fseek(file.f, 0, SEEK_END) != 0) fail(path, ": cannot seek: ", std::strerror(errno));
  const long size = std::ftell(file.f);
  if (size < 0) fail(path, ": cannot tell its size: ", std::strerror(errno));
  const std::int64_t bytes = size;
  if (bytes % kCifarRecordBytes != 0)
    fail(path, ": ", bytes, " bytes is not a whole number of ", kCifarRecordBytes,
         "-byte CIFAR-10 records (1 label byte + 3072 pixel bytes): ", bytes / kCifarRecordBytes,
         " records and ", bytes % kCifarRecordBytes,
         " bytes over; the file is truncated or not a CIFAR-10 binary batch");
  return bytes / kCifarRecordBytes;
}

// Reads `count` records of `path` into `images` / `labels` (already sized for them).
void read_records(const std::string& path, std::int64_t count, float* images, std::int64_t* labels) {
  File file(open_file(path));
  constexpr std::int64_t kChunk = 256;  // records per read: 768 KiB, far below a whole file
  std::vector<std::uint8_t> buffer(static_cast<std::size_t>(kChunk * kCifarRecordBytes));
  for (std::int64_t first = 0; first < count; first += kChunk) {
    const std::int64_t n = std::min(kChunk, count - first);
    const std::size_t want = static_cast<std::size_t>(n * kCifarRecordBytes);
    const std::size_t got = std::fread(buffer.data(), 1, want, file.f);
    if (got < want)
      fail(path, ": truncated while reading: record ", first + static_cast<std::int64_t>(got) / kCifarRecordBytes,
           " of the ", count, " its size promised ends early",
           std::ferror(file.f) ? std::string(" (") + std::strerror(errno) + ")" : std::string());
    for (std::int64_t r = 0; r < n; ++r) {
      const std::uint8_t* record = buffer.data() + r * kCifarRecordBytes;
      const std::int64_t index = first + r;
      if (record[0] >= kCifarClasses)
        fail(path, ": record ", index, " (byte offset ", index * kCifarRecordBytes, ") has label ",
             static_cast<int>(record[0]), "; CIFAR-10 labels are 0 to 9");
      labels[index] = record[0];
      float* out = images + index * kCifarPixels;
      for (std::int64_t p = 0; p < kCifarPixels; ++p) out[p] = static_cast<float>(record[1 + p]);
    }
  }
}

struct ChannelStats {
  std::vector<double> mean, std;
  double mean_all = 0, std_all = 1;
};

// Per-channel mean and standard deviation of raw values in [0, 1] units, from per-channel
// histograms summed in double: independent of summation order, as for IDX data sets.
ChannelStats channel_stats(const Tensor& raw) {
  const std::int64_t n = raw.size(0);
  const std::int64_t plane = kCifarSide * kCifarSide;
  std::vector<std::uint64_t> histogram(kCifarChannels * 256, 0);
  const float* data = raw.data<float>();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < kCifarChannels; ++c) {
      const float* p = data + (i * kCifarChannels + c) * plane;
      std::uint64_t* h = histogram.data() + c * 256;
      for (std::int64_t k = 0; k < plane; ++k) ++h[static_cast<int>(p[k])];
    }
  auto moments = [](const std::uint64_t* h, double count, double& mean, double& std) {
    double sum = 0, sum_sq = 0;
    for (int b = 0; b < 256; ++b) {
      const double v = b / 255.0;
      sum += v * static_cast<double>(h[b]);
      sum_sq += v * v * static_cast<double>(h[b]);
    }
    mean = sum / count;
    const double variance = std::max(sum_sq / count - mean * mean, 0.0);
    std = variance > 1e-12 ? std::sqrt(variance) : 1.0;  // a constant channel: leave the scale
  };
  ChannelStats s;
  std::vector<std::uint64_t> all(256, 0);
  for (std::int64_t c = 0; c < kCifarChannels; ++c) {
    double mean = 0, std = 1;
    moments(histogram.data() + c * 256, static_cast<double>(n * plane), mean, std);
    s.mean.push_back(mean);
    s.std.push_back(std);
    for (int b = 0; b < 256; ++b) all[b] += histogram[c * 256 + b];
  }
  moments(all.data(), static_cast<double>(n * kCifarPixels), s.mean_all, s.std_all);
  return s;
}

// Raw values become (v / 255 - mean_c) / std_c in place, through one table per channel.
void standardise(Tensor& images, const ChannelStats& s) {
  const std::int64_t n = images.size(0);
  const std::int64_t plane = kCifarSide * kCifarSide;
  float* data = images.data<float>();
  for (std::int64_t c = 0; c < kCifarChannels; ++c) {
    float table[256];
    for (int b = 0; b < 256; ++b) table[b] = static_cast<float>((b / 255.0 - s.mean[c]) / s.std[c]);
    for (std::int64_t i = 0; i < n; ++i) {
      float* p = data + (i * kCifarChannels + c) * plane;
      for (std::int64_t k = 0; k < plane; ++k) p[k] = table[static_cast<int>(p[k])];
    }
  }
}

}  // namespace

std::string missing_cifar10_files(const std::string& dir, CifarFiles& files) {
  std::error_code ec;
  // The tarball's folder, when DIR is where the archive was extracted.
  const fs::path nested = fs::path(dir) / kTarballFolder;
  const fs::path base = fs::is_directory(nested, ec) ? nested : fs::path(dir);
  std::string missing;
  auto look = [&](const char* name) {
    const fs::path path = base / name;
    if (fs::is_regular_file(path, ec)) return path.string();
    missing += (missing.empty() ? "" : ", ") + std::string(name);
    return std::string();
  };
  CifarFiles found;
  for (const char* name : kTrainNames) found.train.push_back(look(name));
  found.test = look(kTestName);
  if (missing.empty()) files = std::move(found);
  else if (base == nested) missing += " (in " + nested.string() + ")";
  return missing;
}

CifarFiles find_cifar10_files(const std::string& dir) {
  CifarFiles files;
  const std::string missing = missing_cifar10_files(dir, files);
  SHRINK_CHECK(missing.empty(), dir, ": missing ", missing);
  return files;
}

CifarRecords read_cifar10(const std::vector<std::string>& paths) {
  std::vector<std::int64_t> counts;
  std::int64_t total = 0;
  for (const std::string& path : paths) {
    counts.push_back(record_count(path));
    total += counts.back();
    if (total > kMaxCifarRecords)
      fail(path, ": the files up to this one hold ", total, " records, more than the ", kMaxCifarRecords,
           " one CIFAR-10 split may hold here (the official training split has 50000)");
  }
  CifarRecords out{Tensor::empty({total, kCifarChannels, kCifarSide, kCifarSide}, DType::Float32),
                   Tensor::empty({total}, DType::Int64)};
  float* images = out.images.data<float>();
  std::int64_t* labels = out.labels.data<std::int64_t>();
  std::int64_t offset = 0;
  for (std::size_t f = 0; f < paths.size(); ++f) {
    read_records(paths[f], counts[f], images + offset * kCifarPixels, labels + offset);
    offset += counts[f];
  }
  return out;
}

Dataset load_cifar10_files(const std::string& name, const std::string& source, const CifarFiles& files) {
  CifarRecords train = read_cifar10(files.train);
  CifarRecords test = read_cifar10({files.test});
  SHRINK_CHECK(train.labels.size(0) > 0, name, ": the training files (", files.train.front(),
               " ...) hold no records; the normalisation statistics need a non-empty training set");
  SHRINK_CHECK(test.labels.size(0) > 0, name, ": ", files.test,
               " holds no records; accuracy and loss on an empty test split mean nothing");
  const ChannelStats stats = channel_stats(train.images);
  standardise(train.images, stats);
  standardise(test.images, stats);

  Dataset ds;
  ds.name = name;
  ds.source = source;
  ds.train = {train.images, train.labels};
  ds.test = {test.images, test.labels};
  ds.num_classes = kCifarClasses;
  ds.sample_shape = {kCifarChannels, kCifarSide, kCifarSide};
  ds.stored_shape = ds.sample_shape;
  ds.channel_mean = stats.mean;
  ds.channel_std = stats.std;
  ds.mean = stats.mean_all;
  ds.std = stats.std_all;
  return ds;
}

}  // namespace shrink::datasets
