// core/safetensors: the dtypes PyTorch exports often hold (F16, BF16, I32, U8, BOOL),
// read from files whose bytes the tests write by hand, converted on load (F16/BF16 ->
// float32, I32/U8/BOOL -> int64); truncated or out-of-range data is refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/safetensors.h"
#include "core/shrink.h"

using namespace shrink;
namespace fs = std::filesystem;

namespace {

// One file in a per-test temporary directory, removed afterwards.
class TempFile {
 public:
  TempFile() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("shrink_dtypes_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~TempFile() { fs::remove_all(dir_); }
  std::string path() const { return (dir_ / "t.safetensors").string(); }

 private:
  fs::path dir_;
};

// Little-endian bytes of each value, `width` bytes apiece.
std::string le_bytes(const std::vector<std::uint64_t>& values, int width) {
  std::string out;
  for (auto v : values)
    for (int b = 0; b < width; ++b) out += static_cast<char>((v >> (8 * b)) & 0xff);
  return out;
}

// The 8-byte header length, the JSON header (padded to 8) and the data.
void write_file(const std::string& path, const std::string& dtype, const std::string& shape,
                const std::string& data, std::size_t declared_bytes) {
  std::string header = R"({"t":{"dtype":")" + dtype + R"(","shape":)" + shape +
                       R"(,"data_offsets":[0,)" + std::to_string(declared_bytes) + "]}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string n = le_bytes({header.size()}, 8);
  out << n << header << data;
}

Tensor load_one(const std::string& path) { return load_safetensors(path).tensors.at("t"); }

std::string error_of(const std::string& path) {
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SafetensorsDtypes, F16ConvertsToFloat32Exactly) {
  TempFile f;
  // 1, -2, 0.5, 65504 (largest half), 2^-24 (smallest subnormal), 3 * 2^-16 (a subnormal),
  // -0, inf, 2^-14 (smallest normal)
  const std::vector<std::uint64_t> bits = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001,
                                           0x0030, 0x8000, 0x7c00, 0x0400};
  write_file(f.path(), "F16", "[3,3]", le_bytes(bits, 2), 18);
  const Tensor t = load_one(f.path());
  EXPECT_EQ(t.dtype(), DType::Float32);
  EXPECT_EQ(t.shape(), (Shape{3, 3}));
  const auto v = t.to_vector<float>();
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -2.0f);
  EXPECT_EQ(v[2], 0.5f);
  EXPECT_EQ(v[3], 65504.0f);
  EXPECT_EQ(v[4], std::ldexp(1.0f, -24));
  EXPECT_EQ(v[5], 3 * std::ldexp(1.0f, -20));  // 0x30 = 48 = 3 * 16 units of 2^-24
  EXPECT_EQ(v[6], 0.0f);
  EXPECT_TRUE(std::signbit(v[6]));
  EXPECT_EQ(v[7], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[8], std::ldexp(1.0f, -14));
  // NaN stays NaN.
  write_file(f.path(), "F16", "[1]", le_bytes({0x7e00}, 2), 2);
  EXPECT_TRUE(std::isnan(load_one(f.path()).to_vector<float>()[0]));
}

TEST(SafetensorsDtypes, BF16IsTheUpperHalfOfFloat32) {
  TempFile f;
  // 1, -3.5, pi rounded to bf16 (0x4049 -> 3.140625), 1e38-ish (0x7e96)
  write_file(f.path(), "BF16", "[4]", le_bytes({0x3f80, 0xc060, 0x4049, 0x7e96}, 2), 8);
  const Tensor t = load_one(f.path());
  EXPECT_EQ(t.dtype(), DType::Float32);
  const auto v = t.to_vector<float>();
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], -3.5f);
  EXPECT_EQ(v[2], 3.140625f);
  std::uint32_t bits = 0x7e960000u;
  float expected;
  std::memcpy(&expected, &bits, 4);
  EXPECT_EQ(v[3], expected);
}

TEST(SafetensorsDtypes, IntegersWidenToInt64) {
  TempFile f;
  write_file(f.path(), "I32", "[2,2]", le_bytes({0, 1, 0xffffffffu, 0x80000000u}, 4), 16);
  Tensor t = load_one(f.path());
  EXPECT_EQ(t.dtype(), DType::Int64);
  EXPECT_EQ(t.to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 1, -1, -2147483648LL}));

  write_file(f.path(), "U8", "[3]", le_bytes({0, 7, 255}, 1), 3);
  t = load_one(f.path());
  EXPECT_EQ(t.dtype(), DType::Int64);
  EXPECT_EQ(t.to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 7, 255}));

  write_file(f.path(), "BOOL", "[4]", le_bytes({1, 0, 0, 1}, 1), 4);
  t = load_one(f.path());
  EXPECT_EQ(t.dtype(), DType::Int64);
  EXPECT_EQ(t.to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, 0, 0, 1}));
}

TEST(SafetensorsDtypes, BadOrTruncatedDataIsRefusedNamingTheFile) {
  TempFile f;
  // A BOOL byte other than 0 or 1.
  write_file(f.path(), "BOOL", "[2]", le_bytes({1, 2}, 1), 2);
  std::string msg = error_of(f.path());
  EXPECT_NE(msg.find("BOOL element 1 is 2"), std::string::npos) << msg;
  // Truncated: the header promises 8 bytes of F16 (4 elements), the file holds 6.
  for (const char* dtype : {"F16", "BF16"}) {
    write_file(f.path(), dtype, "[4]", le_bytes({1, 2, 3}, 2), 8);
    msg = error_of(f.path());
    EXPECT_NE(msg.find(f.path()), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  }
  write_file(f.path(), "I32", "[2]", le_bytes({5}, 4), 8);
  EXPECT_NE(error_of(f.path()).find("truncated"), std::string::npos);
  // Offsets inconsistent with the element size of the stored dtype: 2 I32 need 8 bytes.
  write_file(f.path(), "I32", "[2]", le_bytes({5, 6}, 2), 4);
  msg = error_of(f.path());
  EXPECT_NE(msg.find("needs 8"), std::string::npos) << msg;
  // Still unknown: the message lists what is supported.
  write_file(f.path(), "C64", "[1]", le_bytes({0}, 8), 8);
  msg = error_of(f.path());
  EXPECT_NE(msg.find("F16, BF16, I32, U8, BOOL"), std::string::npos) << msg;
}
