// Generated CIFAR-10 binary files for the tests: the six files of the official layout,
// each record's label and pixels a known function of its index, so a test can check every
// value that comes back.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace shrink::testing {

// Record `index` (counted over all the files written, training first): label index % 10,
// pixel p (0..3071, channel-major as stored) of value cifar_pixel(index, p).
inline std::uint8_t cifar_pixel(std::int64_t index, std::int64_t p) {
  const std::int64_t channel = p / 1024;
  // Each channel spans a different range (0..95, 0..175, 0..255): distinct statistics.
  return static_cast<std::uint8_t>((index * 37 + p * 11) % (96 + 80 * channel));
}
inline std::uint8_t cifar_label(std::int64_t index) { return static_cast<std::uint8_t>(index % 10); }

inline std::vector<std::uint8_t> cifar_records(std::int64_t first, std::int64_t count) {
  std::vector<std::uint8_t> bytes;
  for (std::int64_t i = first; i < first + count; ++i) {
    bytes.push_back(cifar_label(i));
    for (std::int64_t p = 0; p < 3072; ++p) bytes.push_back(cifar_pixel(i, p));
  }
  return bytes;
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// data_batch_1.bin ... data_batch_5.bin with `per_file` records each, then test_batch.bin
// with `test` records (indices continue after the training ones). Returns the spec.
inline std::string write_cifar10_dir(const std::filesystem::path& dir, std::int64_t per_file, std::int64_t test) {
  std::filesystem::create_directories(dir);
  for (int f = 0; f < 5; ++f)
    write_bytes(dir / ("data_batch_" + std::to_string(f + 1) + ".bin"), cifar_records(f * per_file, per_file));
  write_bytes(dir / "test_batch.bin", cifar_records(5 * per_file, test));
  return "cifar10:" + dir.string();
}

}  // namespace shrink::testing
