// IDX reader and writer: round trips (raw and .gz, 1 to 4 dimensions) against files built
// byte by byte here, and every malformed-file error naming the path and the problem.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "datasets/idx.h"

namespace {

namespace fs = std::filesystem;
using shrink::Error;
using shrink::datasets::IdxArray;
using shrink::datasets::read_idx;
using shrink::datasets::write_idx;
using Bytes = std::vector<std::uint8_t>;

fs::path temp_dir() {
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(testing::TempDir()) / "shrink_test_idx" / info->name();
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The IDX encoding, written out independently of write_idx.
Bytes idx_bytes(std::uint8_t type, const std::vector<std::uint32_t>& dims, const Bytes& data) {
  Bytes out = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (auto d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(d >> shift));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_raw(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gz(const fs::path& path, const Bytes& bytes) {
  gzFile out = gzopen(path.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(out), Z_OK);
}

Bytes read_raw(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

Bytes pattern(std::size_t n) {
  Bytes data(n);
  std::uint32_t state = 12345;  // an LCG: bytes gzip cannot shrink much, so cuts land mid-data
  for (auto& b : data) b = static_cast<std::uint8_t>((state = state * 1664525u + 1013904223u) >> 24);
  return data;
}

// Runs read_idx on `path` and returns its error message (empty if it did not throw).
std::string read_error(const fs::path& path) {
  try {
    read_idx(path.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Idx, ReadsHandWrittenFilesRawAndGzipped) {
  const fs::path dir = temp_dir();
  const std::vector<std::vector<std::uint32_t>> shapes = {{7}, {3, 5}, {4, 3, 2}, {2, 3, 1, 5}};
  for (const auto& dims : shapes) {
    std::size_t n = 1;
    for (auto d : dims) n *= d;
    const Bytes data = pattern(n);
    for (bool gz : {false, true}) {
      const fs::path path = dir / ("a" + std::to_string(dims.size()) + (gz ? ".gz" : ""));
      gz ? write_gz(path, idx_bytes(0x08, dims, data)) : write_raw(path, idx_bytes(0x08, dims, data));
      const IdxArray array = read_idx(path.string());
      ASSERT_EQ(array.dims.size(), dims.size()) << path;
      for (std::size_t i = 0; i < dims.size(); ++i) EXPECT_EQ(array.dims[i], dims[i]) << path;
      EXPECT_EQ(array.data, data) << path;
    }
  }
}

TEST(Idx, WriterRoundTripsAndMatchesTheFormat) {
  const fs::path dir = temp_dir();
  const IdxArray array{{6, 4, 3}, pattern(72)};
  write_idx((dir / "x").string(), array);
  EXPECT_EQ(read_raw(dir / "x"), idx_bytes(0x08, {6, 4, 3}, array.data));
  write_idx((dir / "x.gz").string(), array);
  const Bytes compressed = read_raw(dir / "x.gz");
  ASSERT_GE(compressed.size(), 2u);
  EXPECT_EQ(compressed[0], 0x1f);  // a real gzip stream, not a plain copy
  EXPECT_EQ(compressed[1], 0x8b);
  for (const char* name : {"x", "x.gz"}) {
    const IdxArray back = read_idx((dir / name).string());
    EXPECT_EQ(back.dims, array.dims) << name;
    EXPECT_EQ(back.data, array.data) << name;
  }
}

TEST(Idx, WriterRejectsInconsistentArrays) {
  const fs::path dir = temp_dir();
  EXPECT_THROW(write_idx((dir / "x").string(), IdxArray{{2, 3}, pattern(5)}), Error);
  EXPECT_THROW(write_idx((dir / "x").string(), IdxArray{{1, 1, 1, 1, 1}, pattern(1)}), Error);
  EXPECT_THROW(write_idx((dir / "x").string(), IdxArray{{}, pattern(1)}), Error);
}

TEST(Idx, TruncatedDataNamesFileAndByteCounts) {
  const fs::path dir = temp_dir();
  Bytes bytes = idx_bytes(0x08, {100, 28, 28}, pattern(1200));  // promises 78400 bytes
  for (bool gz : {false, true}) {
    const fs::path path = dir / (gz ? "short.gz" : "short");
    gz ? write_gz(path, bytes) : write_raw(path, bytes);
    const std::string message = read_error(path);
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("truncated"), std::string::npos) << message;
    EXPECT_NE(message.find("78400"), std::string::npos) << message;
    EXPECT_NE(message.find("found 1200"), std::string::npos) << message;
  }
}

TEST(Idx, TruncatedHeaderAndCutGzipStreamAreTruncation) {
  const fs::path dir = temp_dir();
  write_raw(dir / "dims", {0, 0, 0x08, 3, 0, 0, 0, 10, 0, 0});  // 3 dims promised, 1.5 given
  EXPECT_NE(read_error(dir / "dims").find("truncated"), std::string::npos) << read_error(dir / "dims");

  // A gzip file cut mid-stream (a partial download) must not pass as a shorter data set.
  write_gz(dir / "whole.gz", idx_bytes(0x08, {5000}, pattern(5000)));
  Bytes cut = read_raw(dir / "whole.gz");
  cut.resize(cut.size() / 2);
  write_raw(dir / "cut.gz", cut);
  const std::string message = read_error(dir / "cut.gz");
  EXPECT_NE(message.find((dir / "cut.gz").string()), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;

  // Only the 8-byte CRC/length trailer missing: every data byte arrives, still truncated.
  cut = read_raw(dir / "whole.gz");
  cut.resize(cut.size() - 8);
  write_raw(dir / "no-trailer.gz", cut);
  const std::string trailer_message = read_error(dir / "no-trailer.gz");
  EXPECT_NE(trailer_message.find("truncated"), std::string::npos) << trailer_message;
}

TEST(Idx, TrailingDataIsAnError) {
  const fs::path dir = temp_dir();
  Bytes bytes = idx_bytes(0x08, {4, 4}, pattern(16));
  bytes.push_back(1);
  bytes.push_back(2);
  for (bool gz : {false, true}) {
    const fs::path path = dir / (gz ? "long.gz" : "long");
    gz ? write_gz(path, bytes) : write_raw(path, bytes);
    const std::string message = read_error(path);
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("trailing data: 2 bytes"), std::string::npos) << message;
  }
}

TEST(Idx, BadMagicNumbers) {
  const fs::path dir = temp_dir();
  struct Case {
    Bytes bytes;
    const char* expected;
  };
  const Case cases[] = {
      {{0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 9}, "not an IDX file: bad magic number 0x12340801"},
      {{'P', 'K', 3, 4, 0, 0, 0, 0}, "not an IDX file"},
      {idx_bytes(0x0D, {1}, {0, 0, 0, 0}), "bad magic number 0x00000D01: element type 0x0D"},
      {{0, 0, 0x08, 0}, "bad magic number 0x00000800: 0 dimensions"},
      {{0, 0, 0x08, 5, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7},
       "5 dimensions"},
      {{0, 0}, "not an IDX file: only 2 bytes"},
      {{}, "not an IDX file: only 0 bytes"},
  };
  int i = 0;
  for (const auto& c : cases) {
    const fs::path path = dir / ("bad" + std::to_string(i++));
    write_raw(path, c.bytes);
    const std::string message = read_error(path);
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
  }
}

TEST(Idx, MissingFileCannotOpen) {
  const fs::path path = temp_dir() / "absent-idx1-ubyte";
  const std::string message = read_error(path);
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("cannot open"), std::string::npos) << message;
}

}  // namespace
