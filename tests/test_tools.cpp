// Runs the binaries as a user would, on a small generated IDX data set: training writes
// a checkpoint and metrics, evaluation prints one JSON object, bad input exits non-zero
// with a message that names the problem.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "tests/tool_fixture.h"

namespace {

namespace fs = std::filesystem;
using shrink::testing::Result;
using shrink::testing::run;
using shrink::testing::ToolsTest;

TEST_F(ToolsTest, TrainThenEvalJson) {
  const std::string ckpt = (dir_ / "m.safetensors").string();
  const std::string metrics = (dir_ / "m.jsonl").string();
  Result train = run("shrink-train --model mlp:784-32-2 --data " + data() +
                     " --epochs 2 --batch-size 32 --seed 3 --out " + ckpt + " --metrics " + metrics);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  ASSERT_TRUE(fs::exists(ckpt));

  std::ifstream lines(metrics);
  std::string line;
  int epochs = 0;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    for (const char* key : {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
                            "lr", "seconds", "samples_per_second"})
      EXPECT_TRUE(j.contains(key)) << key << " missing in " << line;
    ++epochs;
  }
  EXPECT_EQ(epochs, 2);

  Result eval = run("shrink-eval " + ckpt + " --data " + data() + " --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  auto j = nlohmann::json::parse(eval.output);  // exactly one JSON object, nothing else
  EXPECT_GT(j["accuracy"].get<double>(), 0.9);  // the problem is linearly separable
  EXPECT_EQ(j["params"].get<std::int64_t>(), 784 * 32 + 32 + 32 * 2 + 2);
  EXPECT_EQ(j["flops"].get<std::int64_t>(), 2 * (784 * 32 + 32 * 2) + 32 + 2);
  EXPECT_GT(j["latency_ms"].get<double>(), 0.0);
  EXPECT_TRUE(j.contains("loss"));
}

TEST_F(ToolsTest, SameSeedSameResult) {
  auto accuracy = [&](const std::string& name) {
    const std::string ckpt = (dir_ / name).string();
    Result r = run("shrink-train --model mlp:784-16-2 --data " + data() +
                   " --epochs 1 --seed 11 --out " + ckpt);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return nlohmann::json::parse(run("shrink-eval " + ckpt + " --data " + data() + " --json").output)["loss"]
        .get<double>();
  };
  EXPECT_EQ(accuracy("a.safetensors"), accuracy("b.safetensors"));
}

// --train-samples: a seeded subset of the training split, recorded in the checkpoint; the
// whole split's count trains exactly as no flag; a count past the split and a resume that
// changes it are refused by name.
TEST_F(ToolsTest, TrainSamplesTrainsOnASeededSubset) {
  auto train = [&](const std::string& name, const std::string& flags, int seed = 11) {
    return run("shrink-train --model mlp:784-16-2 --data " + data() + " --epochs 1 --threads 1 --seed " +
               std::to_string(seed) + " " + flags + " --out " + (dir_ / name).string());
  };
  auto loss = [&](const std::string& name) {
    Result r = run("shrink-eval " + (dir_ / name).string() + " --data " + data() + " --json");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return nlohmann::json::parse(r.output)["loss"].get<double>();
  };
  Result part = train("part.safetensors", "--train-samples 100 --checkpoint-dir " + (dir_ / "state").string());
  ASSERT_EQ(part.exit_code, 0) << part.output;
  EXPECT_NE(part.output.find("100 of 512 train"), std::string::npos) << part.output;
  EXPECT_EQ(shrink::load_safetensors((dir_ / "part.safetensors").string()).metadata.at("train_samples"), "100");
  ASSERT_EQ(train("again.safetensors", "--train-samples 100").exit_code, 0);
  EXPECT_EQ(loss("part.safetensors"), loss("again.safetensors"));
  ASSERT_EQ(train("other.safetensors", "--train-samples 100", 12).exit_code, 0);
  EXPECT_NE(loss("part.safetensors"), loss("other.safetensors"));

  ASSERT_EQ(train("whole.safetensors", "--train-samples 512").exit_code, 0);
  ASSERT_EQ(train("plain.safetensors", "").exit_code, 0);
  EXPECT_EQ(loss("whole.safetensors"), loss("plain.safetensors"));

  Result past = train("x.safetensors", "--train-samples 513");
  EXPECT_NE(past.exit_code, 0);
  EXPECT_NE(past.output.find("--train-samples 513"), std::string::npos) << past.output;
  EXPECT_NE(past.output.find("512 training samples"), std::string::npos) << past.output;
  Result changed = run("shrink-train --resume " + (dir_ / "state").string() + " --train-samples 200");
  EXPECT_NE(changed.exit_code, 0);
  EXPECT_NE(changed.output.find("--train-samples"), std::string::npos) << changed.output;
}

TEST_F(ToolsTest, PruneShrinksAndSparsifyStoresFewerWeights) {
  const std::string dense = (dir_ / "d.safetensors").string();
  ASSERT_EQ(run("shrink-train --model mlp:784-40-20-2 --data " + data() + " --epochs 1 --out " + dense)
                .exit_code, 0);
  const std::string pruned = (dir_ / "p.safetensors").string();
  Result prune = run("shrink-prune " + dense + " --method ispasp --keep 0.5 --calib-samples 128 --data " +
                     data() + " --out " + pruned + " --json");
  ASSERT_EQ(prune.exit_code, 0) << prune.output;
  auto p = nlohmann::json::parse(prune.output);
  EXPECT_EQ(p["widths_after"], nlohmann::json({784, 20, 10, 2}));
  EXPECT_EQ(p["params_after"].get<std::int64_t>(), 784 * 20 + 20 + 20 * 10 + 10 + 10 * 2 + 2);
  EXPECT_LT(fs::file_size(pruned), fs::file_size(dense)) << "the checkpoint is physically smaller";

  const std::string init = (dir_ / "i.safetensors").string();
  ASSERT_EQ(run("shrink-train --model mlp:784-40-20-2 --epochs 0 --data " + data() + " --out " + init).exit_code, 0);
  const std::string sparse = (dir_ / "s.safetensors").string();
  Result sparsify = run("shrink-sparsify " + dense + " --method lottery --init " + init + " --out " + sparse + " --json");
  ASSERT_EQ(sparsify.exit_code, 0) << sparsify.output;
  auto r = nlohmann::json::parse(sparsify.output);
  EXPECT_LT(r["remaining"].get<std::int64_t>(), r["remaining_before"].get<std::int64_t>());
  const std::string retrained = (dir_ / "s2.safetensors").string();
  Result retrain = run("shrink-train --model " + sparse + " --data " + data() + " --epochs 1 --out " + retrained);
  EXPECT_EQ(retrain.exit_code, 0) << retrain.output;
  Result eval = run("shrink-eval " + retrained + " --data " + data() + " --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_EQ(nlohmann::json::parse(eval.output)["params"].get<std::int64_t>(), r["params"].get<std::int64_t>());
}

// A model with Dropout (shrink-train --dropout) prunes to a parameter and a FLOP target,
// saves, reloads and evaluates; the checkpoint keeps the dropout in its spec.
TEST_F(ToolsTest, DropoutModelPrunesToTargetsSavesAndEvaluates) {
  const std::string init = (dir_ / "dropout.safetensors").string();
  Result train = run("shrink-train --model mlp:784-40-20-2 --dropout 0.2 --epochs 0 --data " + data() +
                     " --out " + init);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const std::int64_t dense_params = 784 * 40 + 40 + 40 * 20 + 20 + 20 * 2 + 2;
  const std::int64_t dense_flops = 2 * (784 * 40 + 40 * 20 + 20 * 2) + 40 + 20 + 2;
  for (const char* target : {"--target-params", "--target-flops"}) {
    SCOPED_TRACE(target);
    const std::string pruned = (dir_ / "dropout-pruned.safetensors").string();
    Result prune = run("shrink-prune " + init + " " + target + " 0.5 --calib-samples 64 --data " +
                       data() + " --out " + pruned + " --json");
    ASSERT_EQ(prune.exit_code, 0) << prune.output;
    const auto p = nlohmann::json::parse(prune.output);
    EXPECT_EQ(p["params_before"].get<std::int64_t>(), dense_params);
    EXPECT_EQ(p["flops_before"].get<std::int64_t>(), dense_flops);
    const bool params = std::string(target) == "--target-params";
    const double kept = params ? static_cast<double>(p["params_after"].get<std::int64_t>()) / dense_params
                               : static_cast<double>(p["flops_after"].get<std::int64_t>()) / dense_flops;
    EXPECT_NEAR(kept, 0.5, 0.05) << prune.output;
    Result eval = run("shrink-eval " + pruned + " --data " + data() + " --json");
    ASSERT_EQ(eval.exit_code, 0) << eval.output;
    const auto e = nlohmann::json::parse(eval.output);
    EXPECT_EQ(e["params"], p["params_after"]);
    EXPECT_EQ(e["flops"], p["flops_after"]);
    EXPECT_EQ(e["widths"], p["widths_after"]);
    EXPECT_EQ(e["model"], (nlohmann::json{{"model", "mlp"}, {"spec", "784-40-20-2"}, {"dropout", 0.2}}));
  }
  Result bad_p = run("shrink-train --model mlp:784-8-2 --dropout 1 --epochs 0 --data " + data());
  EXPECT_NE(bad_p.exit_code, 0);
  EXPECT_NE(bad_p.output.find("--dropout"), std::string::npos) << bad_p.output;
  Result on_checkpoint = run("shrink-train --model " + init + " --dropout 0.1 --epochs 0 --data " + data());
  EXPECT_NE(on_checkpoint.exit_code, 0);
  EXPECT_NE(on_checkpoint.output.find("--dropout"), std::string::npos) << on_checkpoint.output;
}

TEST_F(ToolsTest, BadInputExitsNonZeroWithAClearMessage) {
  Result unknown_model = run("shrink-train --model resnet-9000 --data " + data());
  EXPECT_NE(unknown_model.exit_code, 0);
  EXPECT_NE(unknown_model.output.find("lenet-300-100"), std::string::npos) << unknown_model.output;

  Result unknown_flag = run("shrink-train --epoch 3");
  EXPECT_NE(unknown_flag.exit_code, 0);
  EXPECT_NE(unknown_flag.output.find("--epoch"), std::string::npos);
  EXPECT_NE(unknown_flag.output.find("--epochs"), std::string::npos) << "valid flags are listed";

  Result missing_data = run("shrink-train --data idx:" + (dir_ / "nowhere").string());
  EXPECT_NE(missing_data.exit_code, 0);
  EXPECT_NE(missing_data.output.find("nowhere"), std::string::npos) << missing_data.output;

  Result unknown_data = run("shrink-train --data cifar-1000");
  EXPECT_NE(unknown_data.exit_code, 0);
  EXPECT_NE(unknown_data.output.find("fashion-mnist"), std::string::npos) << unknown_data.output;

  const std::string ckpt = (dir_ / "t.safetensors").string();
  ASSERT_EQ(run("shrink-train --model mlp:784-8-2 --data " + data() + " --epochs 1 --out " + ckpt)
                .exit_code, 0);
  fs::resize_file(ckpt, fs::file_size(ckpt) / 2);
  Result truncated = run("shrink-eval " + ckpt + " --data " + data());
  EXPECT_NE(truncated.exit_code, 0);
  EXPECT_NE(truncated.output.find(ckpt), std::string::npos) << truncated.output;

  Result bad_value = run("shrink-eval " + ckpt + " --data " + data() + " --batch-size 0");
  EXPECT_NE(bad_value.exit_code, 0);
  EXPECT_NE(bad_value.output.find("--batch-size"), std::string::npos) << bad_value.output;
}

}  // namespace

// A width whose weight size overflows 64 bits used to allocate a tiny buffer and write past
// it (signal 11); now an error naming the width, with an ordinary exit status.
TEST_F(ToolsTest, HugeModelWidthIsAnErrorNotACrash) {
  const std::string out = (dir_ / "huge.safetensors").string();
  Result train = run("shrink-train --epochs 0 --model mlp:1-9223372036854775807-10 --data " +
                     data() + " --out " + out);
  EXPECT_GE(train.exit_code, 1) << train.output;
  EXPECT_LE(train.exit_code, 127) << train.output;
  EXPECT_NE(train.output.find("9223372036854775807"), std::string::npos) << train.output;
  EXPECT_NE(train.output.find("width"), std::string::npos) << train.output;
  EXPECT_FALSE(fs::exists(out));
}

// Output problems are found before any work, and a tool never writes over its input.
TEST_F(ToolsTest, OutputPathIsCheckedBeforeTheRun) {
  const std::string ckpt = (dir_ / "in.safetensors").string();
  ASSERT_EQ(run("shrink-train --model mlp:784-8-2 --data " + data() + " --epochs 0 --out " + ckpt)
                .exit_code, 0);
  const auto size = fs::file_size(ckpt);

  Result same = run("shrink-prune " + ckpt + " --method magnitude --keep 0.5 --data " + data() +
                    " --out " + ckpt);
  EXPECT_GE(same.exit_code, 1);
  EXPECT_LE(same.exit_code, 127);
  EXPECT_NE(same.output.find("--out"), std::string::npos) << same.output;
  EXPECT_EQ(fs::file_size(ckpt), size) << "the input was rewritten";

  const std::string missing = (dir_ / "no-such-folder" / "x.safetensors").string();
  Result no_folder = run("shrink-train --model mlp:784-8-2 --data " + data() + " --epochs 1 --out " + missing);
  EXPECT_NE(no_folder.exit_code, 0);
  EXPECT_NE(no_folder.output.find("no-such-folder"), std::string::npos) << no_folder.output;
  EXPECT_EQ(no_folder.output.find("epoch 1/1"), std::string::npos) << "trained before failing";

  Result sparsify_same = run("shrink-sparsify " + ckpt + " --method lottery --out " + ckpt);
  EXPECT_NE(sparsify_same.exit_code, 0);
  EXPECT_NE(sparsify_same.output.find("--out"), std::string::npos) << sparsify_same.output;

  Result threads = run("shrink-train --threads 100000 --epochs 0 --out " + (dir_ / "t.safetensors").string());
  EXPECT_NE(threads.exit_code, 0);
  EXPECT_NE(threads.output.find("--threads"), std::string::npos) << threads.output;
}
