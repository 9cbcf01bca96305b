// Crafted input that used to corrupt memory: shapes and model widths whose products
// overflow 64 bits, and JSON nested deep enough to overflow the stack through nlohmann's
// recursive dump. Each must end in a shrink::Error naming the problem, never a crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "core/outside_json.h"
#include "core/safetensors.h"
#include "core/shrink.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "kernels/backend.h"
#include "core/strings.h"
#include "test_helpers.h"

using namespace shrink;
using shrink::testing::error_of;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string temp_file(const std::string& name) {
  return (fs::temp_directory_path() / ("shrink_crafted_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// A safetensors file whose header is exactly `header` (no tensors, no padding rules).
void write_raw_safetensors(const std::string& path, const std::string& header) {
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), sizeof n);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
}

std::string nested_arrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string nested_objects(int depth) {
  std::string text;
  for (int i = 0; i < depth; ++i) text += "{\"a\":";
  text += "1";
  text += std::string(depth, '}');
  return text;
}

// ---- (1) shape and width products ----

TEST(CraftedShape, NumelRefusesOverflowAndNegativeDims) {
  EXPECT_EQ(numel({}), 1);
  EXPECT_EQ(numel({3, 0, 5}), 0);
  EXPECT_EQ(numel({kInt64Max}), kInt64Max);
  const std::string overflow = error_of([] { numel({std::int64_t{1} << 32, std::int64_t{1} << 32}); });
  EXPECT_TRUE(contains(overflow, "numel")) << overflow;
  EXPECT_TRUE(contains(overflow, "(4294967296, 4294967296)")) << overflow;
  // A zero dim empties the tensor, but the other dims still form strides: they must fit.
  EXPECT_NE(error_of([] { numel({0, std::int64_t{1} << 40, std::int64_t{1} << 40}); }), "");
  const std::string negative = error_of([] { numel({2, -3}); });
  EXPECT_TRUE(contains(negative, "negative")) << negative;
  EXPECT_TRUE(contains(negative, "(2, -3)")) << negative;
  EXPECT_NE(error_of([] { prod({std::int64_t{1} << 40, std::int64_t{1} << 40}, 0, 2); }), "");
}

TEST(CraftedShape, ByteSizeRefusesOverflow) {
  EXPECT_EQ(byte_size({3, 5}, 4), 60u);
  const std::string message = error_of([] { byte_size({std::int64_t{1} << 62}, 4); });
  EXPECT_TRUE(contains(message, "byte_size")) << message;
  EXPECT_TRUE(contains(message, "4611686018427387904")) << message;
  // Within int64 elements, but not within int64 bytes.
  EXPECT_NE(error_of([] { byte_size({kInt64Max / 2}, 8); }), "");
}

TEST(CraftedShape, TensorOfAnOverflowingShapeIsAnErrorNotATinyBuffer) {
  // 2^62 * 4 floats: the element count fits int64, the byte count wraps to 0.
  const std::string message =
      error_of([] { Tensor::empty({std::int64_t{1} << 62, 4}, DType::Float32); });
  EXPECT_TRUE(contains(message, "(4611686018427387904, 4)")) << message;
  // Fits every count (2^62 bytes), but no host holds it: a clear error, not bad_alloc.
  const std::string huge = error_of([] { Tensor::empty({std::int64_t{1} << 60}, DType::Float32); });
  EXPECT_TRUE(contains(huge, "4611686018427387904")) << huge;
}

TEST(CraftedShape, CpuAllocatorRoundingCannotWrap) {
  // Rounding SIZE_MAX - 100 up to a page used to wrap to 0 and hand out a null block.
  kernels::Backend& cpu = kernels::backend(DeviceType::CPU);
  for (std::size_t bytes : {std::numeric_limits<std::size_t>::max() - 100,
                            std::numeric_limits<std::size_t>::max() / 2 + 1}) {
    const std::string message = error_of([&] { cpu.allocate(bytes); });
    EXPECT_TRUE(contains(message, std::to_string(bytes))) << message;
  }
}

TEST(CraftedWidth, TextSpecWidthsAreBounded) {
  Generator gen(0);
  for (const char* text : {"mlp:1-9223372036854775807-10", "mlp:1-4611686018427387904-10",
                           "mlp:784-16777217-10"}) {
    const std::string message = error_of([&] { nn::build_model(text, gen); });
    const std::string width = split(std::string(text), '-')[1];
    EXPECT_TRUE(contains(message, "width " + width)) << text << ": " << message;
  }
  // Each width within the limit, the product not: the parameter limit names the spec.
  const std::string total = error_of([&] { nn::build_model("mlp:784-100000-100000-10", gen); });
  EXPECT_TRUE(contains(total, "784-100000-100000-10")) << total;
  EXPECT_TRUE(contains(total, "parameters")) << total;
  // Ordinary models still build.
  EXPECT_NO_THROW(nn::build_model("mlp:784-300-100-10", gen));
}

TEST(CraftedWidth, JsonSpecAndDirectBuildWidthsAreBounded) {
  Generator gen(0);
  const nlohmann::json spec = {{"model", "mlp"}, {"spec", "4-4611686018427387904-2"}};
  EXPECT_TRUE(contains(error_of([&] { nn::build_from_spec(spec, gen); }), "4611686018427387904"));
  const std::string direct = error_of(
      [&] { nn::build_mlp({4, std::int64_t{1} << 62, 2}, "relu", true, gen); });
  EXPECT_TRUE(contains(direct, "build_mlp")) << direct;
  EXPECT_TRUE(contains(direct, "4611686018427387904")) << direct;
  // A sparse placeholder claiming a huge layer.
  nlohmann::json sparse = {{"model", "mlp"}, {"spec", "4-3-2"}};
  sparse["sparse"]["1"] = {{"in_features", std::int64_t{1} << 62}, {"out_features", 3},
                           {"nnz", 4}, {"bias", true}};
  const std::string message = error_of([&] { nn::build_from_spec(sparse, gen); });
  EXPECT_TRUE(contains(message, "sparse layer '1'")) << message;
  sparse["sparse"]["1"] = {{"in_features", 4}, {"out_features", 3}, {"nnz", 13}, {"bias", true}};
  EXPECT_TRUE(contains(error_of([&] { nn::build_from_spec(sparse, gen); }), "nnz 13"));
}

TEST(CraftedWidth, CheckpointClaimingAHugeWidthIsRefused) {
  const std::string path = temp_file("huge_width.safetensors");
  Generator gen(0);
  save_safetensors(path, {{"1.weight", Tensor::ones({3, 4})}},
                   {{"format", "shrink/2"},
                    {"model", R"({"model":"mlp","spec":"4-4611686018427387904-2"})"}});
  std::string message = error_of([&] { nn::load_checkpoint(path, gen); });
  EXPECT_TRUE(contains(message, path)) << message;
  EXPECT_TRUE(contains(message, "4611686018427387904")) << message;
  // The same through a version-1 architecture.
  const nlohmann::json v1 = {{"family", "mlp"},
                             {"widths", {4, std::int64_t{1} << 62, 2}},
                             {"activation", "relu"},
                             {"bias", true}};
  save_safetensors(path, {{"1.weight", Tensor::ones({3, 4})}},
                   {{"format", "shrink/1"}, {"architecture", v1.dump()}});
  message = error_of([&] { nn::load_checkpoint(path, gen); });
  EXPECT_TRUE(contains(message, "4611686018427387904")) << message;
  fs::remove(path);
}

// ---- (4) deeply nested JSON ----

TEST(CraftedJson, DepthLimitIsExact) {
  EXPECT_NO_THROW(parse_outside_json(nested_arrays(kMaxJsonDepth), "t"));
  EXPECT_NO_THROW(parse_outside_json(nested_objects(kMaxJsonDepth), "t"));
  const std::string message = error_of([] { parse_outside_json(nested_arrays(kMaxJsonDepth + 1), "where"); });
  EXPECT_TRUE(contains(message, "where: JSON nested deeper than 64 levels")) << message;
  EXPECT_TRUE(contains(error_of([] { parse_outside_json("{oops", "where"); }), "where: bad JSON"));
}

TEST(CraftedJson, QuoteIsBoundedInLengthAndDepth) {
  nlohmann::json big = nlohmann::json::array();
  for (int i = 0; i < 100000; ++i) big.push_back(i);
  const std::string quoted = quote_json(big, 50);
  EXPECT_EQ(quoted.size(), 53u) << quoted;
  EXPECT_EQ(quoted.substr(0, 7), "[0,1,2,");
  EXPECT_EQ(quoted.substr(50), "...");
  EXPECT_EQ(quote_json(nlohmann::json{{"a", 1}}), R"({"a":1})");
  // A value built in code, deeper than any parsed one may be: printing stops at the limit.
  nlohmann::json deep = 1;
  for (int i = 0; i < 500; ++i) deep = nlohmann::json::array({std::move(deep)});
  const std::string deep_quoted = quote_json(deep, 100000);
  EXPECT_EQ(deep_quoted, std::string(kMaxJsonDepth, '[') + "..." + std::string(kMaxJsonDepth, ']'));
  EXPECT_EQ(quote_json(std::string("\xff\xfe")), "\"\xef\xbf\xbd\xef\xbf\xbd\"");  // U+FFFD twice
}

TEST(CraftedJson, DeepSafetensorsHeaderIsAClearError) {
  const std::string path = temp_file("deep_header.safetensors");
  for (const std::string& header :
       {std::string(100000, '['), nested_arrays(100000), nested_objects(100000),
        "{\"w\": {\"dtype\": \"F32\", \"shape\": " + nested_arrays(100000) +
            ", \"data_offsets\": [0, 0]}}"}) {
    write_raw_safetensors(path, header);
    const std::string message = error_of([&] { load_safetensors(path); });
    EXPECT_TRUE(contains(message, path)) << message.substr(0, 300);
    EXPECT_TRUE(contains(message, "nested deeper than 64")) << message.substr(0, 300);
    EXPECT_LT(message.size(), 1000u);
  }
  fs::remove(path);
}

TEST(CraftedJson, DeepCheckpointModelMetadataIsAClearError) {
  const std::string path = temp_file("deep_model.safetensors");
  Generator gen(0);
  save_safetensors(path, {{"1.weight", Tensor::ones({3, 4})}},
                   {{"format", "shrink/2"}, {"model", nested_objects(100000)}});
  std::string message = error_of([&] { nn::load_checkpoint(path, gen); });
  EXPECT_TRUE(contains(message, path)) << message.substr(0, 300);
  EXPECT_TRUE(contains(message, "metadata 'model'")) << message.substr(0, 300);
  EXPECT_TRUE(contains(message, "nested deeper than 64")) << message.substr(0, 300);
  // Shallow enough to parse, but quoted whole by an error: the quote is cut.
  nlohmann::json wide = {{"model", "mlp"}, {"spec", 7}, {"dropout", std::string(100000, 'x')}};
  save_safetensors(path, {{"1.weight", Tensor::ones({3, 4})}},
                   {{"format", "shrink/2"}, {"model", wide.dump()}});
  message = error_of([&] { nn::load_checkpoint(path, gen); });
  EXPECT_TRUE(contains(message, "mlp needs")) << message.substr(0, 300);
  EXPECT_LT(message.size(), 1000u);
  // Version-1 architecture metadata, nested.
  save_safetensors(path, {{"1.weight", Tensor::ones({3, 4})}},
                   {{"format", "shrink/1"}, {"architecture", nested_arrays(100000)}});
  message = error_of([&] { nn::load_checkpoint(path, gen); });
  EXPECT_TRUE(contains(message, "metadata 'architecture'")) << message.substr(0, 300);
  fs::remove(path);
}

}  // namespace
