// The image flags end to end: shrink-train on a generated CIFAR-10 folder, a wrong-size
// CIFAR file refused by name, --input-size/--channels recorded in the checkpoint and
// followed by shrink-eval and shrink-prune, a resumed run keeping them, --augment
// validated, and a contradicting --input-size caught by the model's shape check.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "tests/generated_cifar10.h"
#include "tests/tool_fixture.h"

namespace {

namespace fs = std::filesystem;
using shrink::testing::Result;
using shrink::testing::run;
using shrink::testing::ToolsTest;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST_F(ToolsTest, TrainsOnCifar10AndRefusesAWrongSizeFile) {
  const std::string cifar = shrink::testing::write_cifar10_dir(dir_ / "cifar", 40, 30);
  const std::string out = (dir_ / "c.safetensors").string();
  Result train = run("shrink-train --data " + cifar + " --model mlp:3072-10 --epochs 1 --batch-size 32 "
                     "--augment crop:4,flip --threads 2 --out " + out);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_TRUE(contains(train.output, "200 train / 30 test")) << train.output;
  Result eval = run("shrink-eval " + out + " --data " + cifar + " --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_EQ(nlohmann::json::parse(eval.output)["data"], cifar);

  std::vector<std::uint8_t> bytes = shrink::testing::cifar_records(0, 3);
  bytes.pop_back();
  shrink::testing::write_bytes(dir_ / "cifar" / "data_batch_2.bin", bytes);
  Result bad = run("shrink-train --data " + cifar + " --model mlp:3072-10 --epochs 1 --out " + out);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(contains(bad.output, (dir_ / "cifar" / "data_batch_2.bin").string())) << bad.output;
  EXPECT_TRUE(contains(bad.output, "9218 bytes")) << bad.output;
}

TEST_F(ToolsTest, SizedTrainingIsRecordedAndFollowed) {
  const std::string model = (dir_ / "m.safetensors").string();
  Result train = run("shrink-train --data " + data() + " --model mlp:3072-16-2 --input-size 32 --channels 3 "
                     "--epochs 2 --batch-size 32 --threads 2 --out " + model);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const auto metadata = shrink::load_safetensors(model).metadata;
  EXPECT_EQ(metadata.at("input_size"), "32");
  EXPECT_EQ(metadata.at("channels"), "3");

  // No flag: the checkpoint's sizing. The generated problem stays easy with a black frame.
  Result eval = run("shrink-eval " + model + " --data " + data() + " --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_GT(nlohmann::json::parse(eval.output)["accuracy"].get<double>(), 0.9);
  // A flag that contradicts the model's input is caught before any step, naming both shapes.
  Result wrong = run("shrink-eval " + model + " --data " + data() + " --input-size 30");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_TRUE(contains(wrong.output, "(3072,)")) << wrong.output;
  EXPECT_TRUE(contains(wrong.output, "(3, 30, 30)")) << wrong.output;

  // shrink-prune follows it too, and so does the checkpoint it writes.
  const std::string pruned = (dir_ / "p.safetensors").string();
  Result prune = run("shrink-prune " + model + " --method magnitude --keep 0.5 --finetune-epochs 1 "
                     "--augment flip --data " + data() + " --out " + pruned + " --json");
  ASSERT_EQ(prune.exit_code, 0) << prune.output;
  EXPECT_EQ(shrink::load_safetensors(pruned).metadata.at("input_size"), "32");
  EXPECT_EQ(run("shrink-eval " + pruned + " --data " + data()).exit_code, 0);

  // shrink-train continuing the checkpoint takes its sizing as well.
  Result more = run("shrink-train --model " + model + " --data " + data() + " --epochs 1 --out " +
                    (dir_ / "more.safetensors").string());
  EXPECT_EQ(more.exit_code, 0) << more.output;
}

TEST_F(ToolsTest, ResumeKeepsTheImageSettings) {
  const std::string state = (dir_ / "state").string();
  const std::string out = (dir_ / "r.safetensors").string();
  Result first = run("shrink-train --data " + data() + " --model mlp:2048-2 --input-size 32 --channels 2 "
                     "--augment crop:2 --epochs 1 --checkpoint-dir " + state + " --out " + out);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  Result resumed = run("shrink-train --resume " + state + " --out " + out);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  Result contradicts = run("shrink-train --resume " + state + " --input-size 30");
  EXPECT_NE(contradicts.exit_code, 0);
  EXPECT_TRUE(contains(contradicts.output, "--input-size 30 contradicts")) << contradicts.output;
}

TEST_F(ToolsTest, BadImageFlagsNameTheFlag) {
  Result augment = run("shrink-train --data " + data() + " --augment crop:99 --epochs 0");
  EXPECT_NE(augment.exit_code, 0);
  EXPECT_TRUE(contains(augment.output, "--augment")) << augment.output;
  Result small = run("shrink-eval " + (dir_ / "none.safetensors").string() + " --input-size -2");
  EXPECT_NE(small.exit_code, 0);
  EXPECT_TRUE(contains(small.output, "--input-size")) << small.output;
  Result smaller = run("shrink-train --data " + data() + " --input-size 16 --epochs 0 --out " +
                       (dir_ / "x.safetensors").string());
  EXPECT_NE(smaller.exit_code, 0);
  EXPECT_TRUE(contains(smaller.output, "--input-size 16 is smaller than the 28x28")) << smaller.output;
}

}  // namespace
