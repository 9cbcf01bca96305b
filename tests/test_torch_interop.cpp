// PyTorch interop: scripts/export_torch_encoder.py exports a randomly initialised
// torch.nn.TransformerEncoder (Debian's python3-torch) with an input and its eval-mode outputs;
// shrink loads the weights into its TransformerEncoder by name and must give the same outputs,
// without and with a padding mask, post-LN (PyTorch's default) and pre-LN. Skips with a message
// when python3 cannot import torch.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "core/shrink.h"
#include "nn/transformer.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::nn;
using namespace shrink::testing;

namespace {

// The repository root, from this file's path (tests/ is one level down).
std::string source_dir() { return std::filesystem::path(__FILE__).parent_path().parent_path().string(); }

std::string python() {
  const char* p = std::getenv("SHRINK_PYTHON");
  return p ? p : "/usr/bin/python3";
}

bool torch_available() {
  return std::system((python() + " -c 'import torch' > /dev/null 2>&1").c_str()) == 0;
}

// float32 throughout: the two libraries sum in different orders.
constexpr double kTolerance = 2e-5;

void check_against_torch(const std::string& flags, const std::string& tag) {
  const std::string path = ::testing::TempDir() + "torch_encoder_" + tag + ".safetensors";
  const std::string cmd = python() + " " + source_dir() + "/scripts/export_torch_encoder.py " + path + " " + flags;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const SafetensorsContents file = load_safetensors(path);
  const nlohmann::json opt = nlohmann::json::parse(file.metadata.at("options"));
  EncoderOptions o;
  o.d_model = opt["d_model"], o.heads = opt["heads"], o.ffn = opt["ffn"], o.layers = opt["layers"];
  o.activation = opt["activation"], o.norm_first = opt["norm_first"], o.final_norm = opt["final_norm"];
  o.eps = opt["eps"], o.dropout = 0;
  Generator gen(0);
  TransformerEncoder encoder(o, gen);
  StateDict weights;
  for (const auto& [name, t] : file.tensors)
    if (name.rfind("input.", 0) != 0 && name.rfind("output.", 0) != 0) weights[name] = t;
  encoder.load_state_dict(weights, /*strict=*/true);
  encoder.eval();
  const Tensor& x = file.tensors.at("input.x");
  const Tensor& mask = file.tensors.at("input.attention_mask");
  EXPECT_TRUE(all_close(tag + " without a mask", encoder(x), file.tensors.at("output.plain"), kTolerance, kTolerance));
  // With the mask, only real tokens: PyTorch leaves padded rows' outputs unspecified.
  const std::vector<float> got = encoder(x, {attention_mask_bias(mask, DType::Float32)}).to_vector<float>();
  const std::vector<float> want = file.tensors.at("output.masked").to_vector<float>();
  const std::vector<std::int64_t> m = mask.to_vector<std::int64_t>();
  int compared = 0;
  for (std::size_t t = 0; t < m.size(); ++t)
    if (m[t] == 1)
      for (std::int64_t c = 0; c < o.d_model; ++c, ++compared) {
        const std::size_t at = t * o.d_model + c;
        ASSERT_NEAR(got[at], want[at], kTolerance * (1 + std::abs(want[at]))) << tag << " masked, token " << t;
      }
  EXPECT_GT(compared, 0);
  // The mask mattered: a padded sequence's real tokens differ from the unmasked output.
  EXPECT_FALSE(all_close("", file.tensors.at("output.plain"), file.tensors.at("output.masked"), 1e-3, 1e-3));
}

}  // namespace

TEST(TorchInterop, TransformerEncoderPostLnGivesPyTorchsOutputs) {
  if (!torch_available()) GTEST_SKIP() << "PyTorch not importable by " << python() << " (apt-get install python3-torch)";
  check_against_torch("--layers 2 --activation relu", "post_ln_relu");
  check_against_torch("--layers 3 --d-model 24 --heads 3 --ffn 40 --seed 3", "post_ln_gelu");
}

TEST(TorchInterop, TransformerEncoderPreLnWithFinalNormGivesPyTorchsOutputs) {
  if (!torch_available()) GTEST_SKIP() << "PyTorch not importable by " << python() << " (apt-get install python3-torch)";
  check_against_torch("--norm-first --final-norm --layers 2 --seed 1", "pre_ln");
}
