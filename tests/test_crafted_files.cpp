// Crafted files whose headers claim far more than they hold: each must fail (or load at
// the size it holds) before the claimed work is done. And the bugs the fuzz targets
// (tests/fuzz/) found, one test each.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "core/shrink.h"
#include "datasets/idx.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "nn/schedule.h"
#include "test_helpers.h"

using namespace shrink;
using shrink::testing::error_of;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string temp_file(const std::string& name) {
  return (fs::temp_directory_path() /
          ("shrink_crafted_files_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// The process's address space now, from /proc/self/status (VmSize, in bytes).
std::uint64_t address_space_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  return 0;
}

// Runs `f` with the address space capped at what the process has now plus `headroom`:
// any allocation the cap refuses makes the call throw (shrink::Error from the allocator),
// so a test passes only if `f` stays within the headroom. The cap is lifted afterwards.
template <class F>
void within_address_space(std::uint64_t headroom, F&& f) {
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_AS, &old), 0);
  const std::uint64_t now = address_space_bytes();
  ASSERT_GT(now, 0u);
  rlimit capped = old;
  capped.rlim_cur = std::min<rlim_t>(old.rlim_max, now + headroom);
  ASSERT_EQ(::setrlimit(RLIMIT_AS, &capped), 0);
  try {
    f();
  } catch (...) {
    ::setrlimit(RLIMIT_AS, &old);
    throw;
  }
  ASSERT_EQ(::setrlimit(RLIMIT_AS, &old), 0);
}

// A checkpoint of an mlp of `widths` whose metadata then claims `spec` instead.
std::string checkpoint_claiming(const std::string& name, const std::vector<std::int64_t>& widths,
                                const nlohmann::json& spec) {
  const std::string path = temp_file(name);
  Generator gen(7);
  nn::save_checkpoint(path, *nn::build_mlp(widths, "relu", true, gen));
  SafetensorsContents contents = load_safetensors(path);
  contents.metadata["model"] = spec.dump();
  std::vector<std::pair<std::string, Tensor>> tensors(contents.tensors.begin(), contents.tensors.end());
  save_safetensors(path, tensors, contents.metadata);
  return path;
}

constexpr std::uint64_t kHeadroom = std::uint64_t{1} << 30;  // 1 GiB

}  // namespace

// The issue's "1 MB checkpoint claiming a 1,000,000-unit layer": the old loader built the
// 784-1000000-10 model (3.2 GB) before looking at a tensor. The saved tensors are those of
// a consistent pruned model, so it loads, built at the file's sizes within 1 GiB.
TEST(CraftedFiles, CheckpointClaimingMillionUnitLayerIsBuiltAtTheFileSizes) {
  const std::string path = checkpoint_claiming(
      "million.safetensors", {784, 3, 10}, {{"model", "mlp"}, {"spec", "784-1000000-10"}});
  nn::Checkpoint loaded;
  within_address_space(kHeadroom, [&] {
    Generator gen(0);
    loaded = nn::load_checkpoint(path, gen);
  });
  ASSERT_TRUE(loaded.model);
  EXPECT_EQ(nn::layer_widths(*loaded.model), (std::vector<std::int64_t>{784, 3, 10}));
  EXPECT_EQ(nn::model_spec(*loaded.model).at("spec"), "784-1000000-10");  // as saved
  fs::remove(path);
}

// Saved shapes that do not fit the spec's architecture fail before anything is built,
// naming the file, the tensor and both shapes.
TEST(CraftedFiles, CheckpointShapesAreComparedWithTheSpecBeforeBuilding) {
  const std::string wider = checkpoint_claiming("wider.safetensors", {784, 300, 10},
                                                {{"model", "mlp"}, {"spec", "784-1000000-5"}});
  std::string message;
  within_address_space(kHeadroom, [&] {
    Generator gen(0);
    message = error_of([&] { nn::load_checkpoint(wider, gen); });
  });
  EXPECT_TRUE(contains(message, wider)) << message;
  EXPECT_TRUE(contains(message, "tensor '3.weight' has shape (10, 300)")) << message;
  EXPECT_TRUE(contains(message, "(5, 1000000)")) << message;

  const std::string missing = checkpoint_claiming(
      "missing.safetensors", {4, 3, 2}, {{"model", "mlp"}, {"spec", "4-60000-60000-2"}});
  within_address_space(kHeadroom, [&] {
    Generator gen(0);
    message = error_of([&] { nn::load_checkpoint(missing, gen); });
  });
  EXPECT_TRUE(contains(message, missing)) << message;
  EXPECT_TRUE(contains(message, "no tensor '5.weight'")) << message;

  // A sparse layer claiming 2^32 entries: compared with the file's before a placeholder
  // of that size is made.
  const std::string sparse = checkpoint_claiming(
      "sparse.safetensors", {4, 3, 2},
      {{"model", "mlp"}, {"spec", "4-3-2"},
       {"sparse", {{"3", {{"in_features", 16777216}, {"out_features", 256},
                          {"nnz", 4294967296LL}, {"bias", true}}}}}});
  within_address_space(kHeadroom, [&] {
    Generator gen(0);
    message = error_of([&] { nn::load_checkpoint(sparse, gen); });
  });
  EXPECT_TRUE(contains(message, sparse)) << message;
  EXPECT_TRUE(contains(message, "no tensor '3.values'")) << message;

  // ... and a placeholder at a path that is not a layer.
  const std::string stray = checkpoint_claiming(
      "stray.safetensors", {4, 3, 2},
      {{"model", "mlp"}, {"spec", "4-3-2"},
       {"sparse", {{"2", {{"in_features", 16777216}, {"out_features", 256},
                          {"nnz", 4294967296LL}}}}}});
  within_address_space(kHeadroom, [&] {
    Generator gen(0);
    message = error_of([&] { nn::load_checkpoint(stray, gen); });
  });
  EXPECT_TRUE(contains(message, "sparse layer '2' is not one of the mlp's 2 layers")) << message;
  for (const auto& p : {wider, missing, sparse, stray}) fs::remove(p);
}

// A spec's parameter count, computed without building, is what the built model holds.
TEST(CraftedFiles, SpecParameterCountMatchesTheBuiltModel) {
  for (const std::string text : {"mlp:4-3-2", "mlp:5-4-3-2:gelu", "lenet-300-100"}) {
    for (const bool bias : {true, false}) {
      nlohmann::json spec = nn::parse_model_text(text);
      if (!bias) spec["bias"] = false;
      Generator gen(0);
      FillsOff no_fills(gen);
      const auto model = nn::build_from_spec(spec, gen);
      std::int64_t held = 0;
      for (const auto& [name, t] : model->state_dict()) held += t.numel();
      EXPECT_EQ(nn::spec_parameter_count(spec), held) << spec.dump();
    }
  }
  // ffn-10000: 784*10000 + 10000 + 10000*10 + 10 values, counted, not built.
  EXPECT_EQ(nn::spec_parameter_count(nn::parse_model_text("ffn-10000")), 7'950'010);
}

// A .gz whose header claims 1x46341x46341 (2.1 GB, then 8.6 GB as floats) is refused from
// its header, before any data is decompressed, naming the file and the bound.
TEST(CraftedFiles, IdxClaimingGigabytesIsRefusedFromItsHeader) {
  const std::string path = temp_file("huge-idx3-ubyte.gz");
  {
    gzFile out = gzopen(path.c_str(), "wb9");
    ASSERT_NE(out, nullptr);
    const unsigned char header[] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0xB5, 0x05, 0, 0, 0xB5, 0x05};
    ASSERT_EQ(gzwrite(out, header, sizeof header), static_cast<int>(sizeof header));
    std::vector<unsigned char> zeros(1 << 20);
    ASSERT_EQ(gzwrite(out, zeros.data(), static_cast<unsigned>(zeros.size())),
              static_cast<int>(zeros.size()));
    gzclose(out);
  }
  std::string message;
  within_address_space(kHeadroom, [&] {
    message = error_of([&] { datasets::read_idx(path); });
  });
  EXPECT_TRUE(contains(message, path)) << message;
  EXPECT_TRUE(contains(message, "(1, 46341, 46341)")) << message;
  EXPECT_TRUE(contains(message, "more than the 268435456 elements")) << message;
  fs::remove(path);
}

// Trailing bytes after the data are counted only up to a bound: a small .gz can inflate to
// gigabytes, and the error needs only to say there are more.
TEST(CraftedFiles, IdxTrailingDataIsCountedUpToABound) {
  const std::string path = temp_file("trailing-idx1-ubyte.gz");
  {
    gzFile out = gzopen(path.c_str(), "wb9");
    ASSERT_NE(out, nullptr);
    const unsigned char header[] = {0, 0, 8, 1, 0, 0, 0, 2, 7, 9};
    ASSERT_EQ(gzwrite(out, header, sizeof header), static_cast<int>(sizeof header));
    std::vector<unsigned char> zeros(1 << 20);
    ASSERT_EQ(gzwrite(out, zeros.data(), static_cast<unsigned>(zeros.size())),
              static_cast<int>(zeros.size()));
    gzclose(out);
  }
  const std::string message = error_of([&] { datasets::read_idx(path); });
  EXPECT_TRUE(contains(message, "trailing data: more than 65536 bytes after the 2 bytes")) << message;
  fs::remove(path);
}

// Written with fuzz_schedule's invariant (a rate is never NaN): an infinite factor parsed
// ("step:3:inf", "cosine:10:inf") and gave infinite or NaN learning rates.
TEST(CraftedFiles, ScheduleFactorsMustBeFinite) {
  for (const char* text : {"step:3:inf", "step:3:nan", "multistep:2,4:inf", "cosine:10:inf",
                           "warmup:2+step:3:inf"}) {
    const std::string message = error_of([&] { nn::parse_schedule(text, 10); });
    EXPECT_TRUE(contains(message, "finite")) << text << ": " << message;
  }
}

// Found by fuzz_schedule (tests/fuzz/corpus/schedule/regression-cosine-eta-min-above-base):
// with eta_min far above the base rate, the cosine closed form rounded to a negative rate.
TEST(CraftedFiles, CosineRateStaysBetweenBaseAndEtaMin) {
  const auto schedule = nn::parse_schedule("cosine:10:1e308");
  for (std::int64_t t = -1; t <= 11; ++t) {
    const double lr = schedule->lr_at(0.1, t);
    EXPECT_GE(lr, 0.1) << "t = " << t;
    EXPECT_LE(lr, 1e308) << "t = " << t;
  }
  EXPECT_EQ(schedule->lr_at(0.1, 0), 0.1);
  EXPECT_EQ(schedule->lr_at(0.1, 10), 1e308);
}

// Found by fuzz_safetensors (tests/fuzz/corpus/safetensors/regression-empty-tensor-name): a
// header naming a tensor "" loaded, though the writer refuses such a name.
TEST(CraftedFiles, SafetensorsTensorWithAnEmptyNameIsRefused) {
  const std::string header = R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::string bytes(8, '\0');
  for (std::size_t i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  bytes += header + std::string(4, '\0');
  const std::string path = temp_file("empty-name.safetensors");
  std::ofstream(path, std::ios::binary) << bytes;
  const std::string message = error_of([&] { load_safetensors(path); });
  EXPECT_TRUE(contains(message, "a tensor has an empty name")) << message;
  EXPECT_TRUE(contains(message, path)) << message;
}
