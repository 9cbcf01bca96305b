// shrink-prune --prune-inputs end to end: the pruned checkpoint keeps fewer input features,
// states which, and still takes full images in shrink-eval and shrink-train.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/tool_fixture.h"

namespace {

namespace fs = std::filesystem;
using shrink::testing::Result;
using shrink::testing::run;
using shrink::testing::ToolsTest;

TEST_F(ToolsTest, PruneInputsThenEvalAndTrainOnFullImages) {
  const std::string dense = (dir_ / "d.safetensors").string();
  ASSERT_EQ(run("shrink-train --model mlp:784-32-2 --data " + data() + " --epochs 2 --batch-size 32 --out " + dense)
                .exit_code, 0);
  const std::string pruned = (dir_ / "p.safetensors").string();
  Result prune = run("shrink-prune " + dense + " --method pfp --prune-inputs --target-params 0.2 --calib-samples 128 "
                     "--finetune-epochs 1 --data " + data() + " --out " + pruned + " --json");
  ASSERT_EQ(prune.exit_code, 0) << prune.output;
  const auto p = nlohmann::json::parse(prune.output);
  EXPECT_TRUE(p["prune_inputs"].get<bool>());
  const auto widths = p["widths_after"].get<std::vector<std::int64_t>>();
  ASSERT_EQ(widths.size(), 3u);
  EXPECT_LT(widths[0], 784) << "the first layer reads fewer input features";
  EXPECT_EQ(p["params_after"].get<std::int64_t>(), widths[0] * widths[1] + widths[1] + widths[1] * 2 + 2);
  EXPECT_EQ(p["flops_after"].get<std::int64_t>(), 2 * (widths[0] * widths[1] + widths[1] * 2) + widths[1] + 2);
  EXPECT_LT(p["params_after"].get<double>(), 0.25 * p["params_before"].get<double>());

  // shrink-eval feeds full 28x28 images; the model selects its features itself.
  Result eval = run("shrink-eval " + pruned + " --data " + data() + " --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const auto e = nlohmann::json::parse(eval.output);
  EXPECT_EQ(e["params"], p["params_after"]);
  EXPECT_EQ(e["flops"], p["flops_after"]);
  EXPECT_DOUBLE_EQ(e["accuracy"].get<double>(), p["accuracy_after"].get<double>());
  EXPECT_GT(e["accuracy"].get<double>(), 0.9);  // the generated problem stays easy with fewer pixels

  // shrink-train continues from the pruned checkpoint, and it prunes again.
  const std::string trained = (dir_ / "t.safetensors").string();
  Result train = run("shrink-train --model " + pruned + " --data " + data() + " --epochs 1 --out " + trained);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  Result again = run("shrink-prune " + trained + " --method magnitude --prune-inputs --keep 0.5 --keep-inputs 0.5 "
                     "--data " + data() + " --out " + (dir_ / "q.safetensors").string() + " --json");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  const auto q = nlohmann::json::parse(again.output);
  EXPECT_EQ(q["widths_after"][0].get<std::int64_t>(), (widths[0] + 1) / 2);
  EXPECT_EQ(run("shrink-eval " + (dir_ / "q.safetensors").string() + " --data " + data() + " --json").exit_code, 0);
}

// The schedule's saved state carries the input pruning settings and the input selection: a
// resumed run ends with the uninterrupted run's checkpoint, byte for byte.
TEST_F(ToolsTest, PruneInputsResumesToTheSameCheckpoint) {
  const std::string dense = (dir_ / "d.safetensors").string();
  ASSERT_EQ(run("shrink-train --model mlp:784-16-2 --data " + data() + " --epochs 1 --out " + dense).exit_code, 0);
  const std::string states = (dir_ / "states").string();
  const std::string common = " --method taylor --prune-inputs --keep 0.5 --keep-inputs 0.6 --iterations 2 "
                             "--finetune-epochs 1 --calib-samples 64 --data " + data();
  const std::string full = (dir_ / "full.safetensors").string();
  Result first = run("shrink-prune " + dense + common + " --checkpoint-dir " + states + " --out " + full + " --json");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(nlohmann::json::parse(first.output)["widths_after"][0].get<std::int64_t>(), 470);  // 784 * 0.6
  fs::remove_all(fs::path(states) / "state-000000000002");
  const std::string resumed = (dir_ / "resumed.safetensors").string();
  Result again = run("shrink-prune --resume " + states + " --out " + resumed + " --json");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  std::ifstream a(full, std::ios::binary), b(resumed, std::ios::binary);
  const std::string bytes_a((std::istreambuf_iterator<char>(a)), {}), bytes_b((std::istreambuf_iterator<char>(b)), {});
  EXPECT_TRUE(bytes_a == bytes_b) << "the resumed run's checkpoint differs";
}

TEST_F(ToolsTest, KeepInputsNeedsPruneInputs) {
  Result r = run("shrink-prune x.safetensors --keep 0.5 --keep-inputs 0.5 --data " + data());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--prune-inputs"), std::string::npos) << r.output;
}

}  // namespace
