// Shared by the tool-level resume tests: a scratch folder, bitwise comparison of two
// checkpoints' tensors, and the state folders a run left.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "core/safetensors.h"

namespace shrink::testing {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / ("shrink-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Every tensor of `a` equals `b`'s bit for bit (same names, shapes, bytes).
inline ::testing::AssertionResult same_weights(const std::string& a, const std::string& b) {
  const auto ta = load_safetensors(a).tensors, tb = load_safetensors(b).tensors;
  if (ta.size() != tb.size()) return ::testing::AssertionFailure() << a << " and " << b << " differ in tensor count";
  for (const auto& [name, t] : ta) {
    auto it = tb.find(name);
    if (it == tb.end()) return ::testing::AssertionFailure() << b << " lacks " << name;
    if (t.shape() != it->second.shape() ||
        std::memcmp(t.raw_data(), it->second.raw_data(), t.numel() * dtype_size(t.dtype())) != 0)
      return ::testing::AssertionFailure() << name << " differs between " << a << " and " << b;
  }
  return ::testing::AssertionSuccess();
}

// Paths under `dir` (recursively) whose name holds ".tmp.": what an interrupted write leaves.
inline std::vector<std::string> temp_files_under(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) out.push_back(e.path().string());
  return out;
}

}  // namespace shrink::testing
