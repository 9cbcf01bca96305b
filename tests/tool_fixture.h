// The fixture of the tests that run the binaries as a user would: a small generated IDX
// data set (two classes separable by the brightness of the top half of a 28x28 image) in
// a per-process temporary folder, and run() for the binaries.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/random.h"
#include "tests/generated_idx.h"
#include "tests/tool_runner.h"

namespace shrink::testing {

namespace fs = std::filesystem;
using Result = ToolResult;
inline Result run(const std::string& args) { return run_tool(args); }

class ToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shrink-tools-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    Generator gen(7);
    write_idx_split(dir_, "train", 512, gen, /*gzip_labels=*/true);
    write_idx_split(dir_, "t10k", 128, gen, /*gzip_labels=*/true);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string data() const { return "idx:" + dir_.string(); }
  fs::path dir_;
};

}  // namespace shrink::testing
