// IDX: the file format of MNIST and Fashion-MNIST (LeCun et al.). A big-endian header —
// two zero bytes, an element-type byte, a dimension count, then one uint32 per
// dimension — followed by the elements in row-major order. Files may be gzip-compressed;
// zlib reads both forms through one code path.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/shape.h"

namespace shrink::datasets {

// Element type 0x08 (unsigned byte) is the only one MNIST-style data sets use, so it is
// the only one we read; other types are rejected by name.
constexpr std::uint8_t kIdxUnsignedByte = 0x08;

// The most elements (bytes) read_idx accepts: 256 MiB. Data sets become float32 tensors
// (4 bytes per element) beside their bytes, so this keeps one split's copies near 1.25 GiB;
// it is over five times the largest file we read (Fashion-MNIST's training images, 47 MB).
// A header promising more is refused before anything is allocated or decompressed.
constexpr std::uint64_t kMaxIdxBytes = std::uint64_t{1} << 28;

// An IDX array of unsigned bytes: `dims` (1 to 4 of them) and the elements, row-major.
struct IdxArray {
  Shape dims;
  std::vector<std::uint8_t> data;
};

// Reads `path` (raw or .gz). Throws shrink::Error naming the path and the problem:
// cannot open, not an IDX file, bad magic number, more than kMaxIdxBytes promised,
// truncated, trailing data.
IdxArray read_idx(const std::string& path);

// Writes `array` to `path`; gzip-compressed when the path ends in ".gz".
void write_idx(const std::string& path, const IdxArray& array);

}  // namespace shrink::datasets
