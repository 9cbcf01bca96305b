// The fixture of the tests that run the binaries as a user would: a small generated IDX
// data set (two classes separable by the brightness of the top half of a 28x28 image) in
// a per-process temporary folder, and run() for the binaries.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/random.h"
#include "datasets/idx.h"
#include "tests/tool_runner.h"

namespace shrink::testing {

namespace fs = std::filesystem;
using Result = ToolResult;
inline Result run(const std::string& args) { return run_tool(args); }

// n samples: images `<prefix>-images-idx3-ubyte`, labels `<prefix>-labels-idx1-ubyte.gz`.
inline void write_split(const fs::path& dir, const std::string& prefix, std::int64_t n, Generator& gen) {
  datasets::IdxArray images{{n, 28, 28}, std::vector<std::uint8_t>(n * 784)};
  datasets::IdxArray labels{{n}, std::vector<std::uint8_t>(n)};
  for (std::int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(gen.next_below(2));
    labels.data[i] = static_cast<std::uint8_t>(label);
    for (int p = 0; p < 784; ++p) {
      const bool bright = (p < 392) == (label == 1);
      images.data[i * 784 + p] = static_cast<std::uint8_t>(gen.next_below(100) + (bright ? 120 : 0));
    }
  }
  datasets::write_idx((dir / (prefix + "-images-idx3-ubyte")).string(), images);
  datasets::write_idx((dir / (prefix + "-labels-idx1-ubyte.gz")).string(), labels);
}

class ToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shrink-tools-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    Generator gen(7);
    write_split(dir_, "train", 512, gen);
    write_split(dir_, "t10k", 128, gen);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string data() const { return "idx:" + dir_.string(); }
  fs::path dir_;
};

}  // namespace shrink::testing
