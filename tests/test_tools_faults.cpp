// Numerical and resource faults met by the binaries as a user would meet them: a diverging
// run stops without writing --out, non-finite checkpoints are refused, a huge batch size
// still trains and evaluates, an empty test split and a failing --metrics write are errors,
// pruning that could prune nothing and SAP hyperparameters out of range are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "tests/tool_fixture.h"

namespace {

namespace fs = std::filesystem;
using shrink::testing::Result;
using shrink::testing::run;
using shrink::testing::ToolsTest;

void expect_clean_failure(const Result& r, const std::string& must_mention) {
  EXPECT_GE(r.exit_code, 1) << r.output;
  EXPECT_LE(r.exit_code, 127) << r.output;
  EXPECT_NE(r.output.find(must_mention), std::string::npos) << "expected '" << must_mention << "' in:\n" << r.output;
}

class ToolFaults : public ToolsTest {
 protected:
  std::string train_small(const std::string& name, const std::string& extra = "--epochs 1") {
    const std::string ckpt = (dir_ / name).string();
    Result r = run("shrink-train --model mlp:784-16-2 --data " + data() + " --out " + ckpt + " " + extra);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return ckpt;
  }
};

TEST_F(ToolFaults, DivergingTrainingStopsNamingStepAndKeepsTheOldOutput) {
  const std::string out = train_small("keep.safetensors");
  const auto before = fs::last_write_time(out);
  Result r = run("shrink-train --model mlp:784-16-2 --data " + data() + " --epochs 2 --lr 1e6 --out " + out);
  expect_clean_failure(r, "step ");
  EXPECT_NE(r.output.find("the loss is"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("was not written"), std::string::npos) << r.output;
  EXPECT_EQ(fs::last_write_time(out), before) << "a diverged run replaced the checkpoint";
}

TEST_F(ToolFaults, NonFiniteLearningRatesAndTargetsAreFlagErrors) {
  for (const char* lr : {"0", "-0.1", "nan", "inf"}) {
    SCOPED_TRACE(lr);
    expect_clean_failure(run(std::string("shrink-train --epochs 0 --lr ") + lr + " --data " + data()), "--lr");
  }
  const std::string ckpt = train_small("m.safetensors");
  expect_clean_failure(run("shrink-prune " + ckpt + " --keep nan --data " + data()), "--keep");
  expect_clean_failure(run("shrink-prune " + ckpt + " --keep 0.5 --lr -1 --finetune-epochs 1 --data " + data()),
                       "--lr");
  expect_clean_failure(run("shrink-sparsify " + ckpt + " --gamma nan --out " + (dir_ / "s.safetensors").string()),
                       "--gamma");
  expect_clean_failure(run("shrink-sparsify " + ckpt + " --beta 0 --out " + (dir_ / "s.safetensors").string()),
                       "--beta");
}

TEST_F(ToolFaults, CheckpointWithNanOrInfIsRefusedByEveryBinary) {
  const std::string ckpt = train_small("finite.safetensors");
  shrink::SafetensorsContents c = shrink::load_safetensors(ckpt);
  const std::string bad = (dir_ / "nan.safetensors").string();
  shrink::Tensor w = c.tensors.at("3.weight");
  static_cast<float*>(w.raw_data())[5] = std::numeric_limits<float>::infinity();
  std::vector<std::pair<std::string, shrink::Tensor>> tensors(c.tensors.begin(), c.tensors.end());
  shrink::save_safetensors(bad, tensors, c.metadata);
  const std::string out = (dir_ / "o.safetensors").string();
  for (const std::string& cmd : {"shrink-eval " + bad + " --data " + data(),
                                 "shrink-prune " + bad + " --keep 0.5 --data " + data() + " --out " + out,
                                 "shrink-sparsify " + bad + " --out " + out,
                                 "shrink-train --model " + bad + " --epochs 1 --data " + data() + " --out " + out}) {
    SCOPED_TRACE(cmd);
    Result r = run(cmd);
    expect_clean_failure(r, bad);
    EXPECT_NE(r.output.find("tensor '3.weight' holds inf at element 5"), std::string::npos) << r.output;
  }
  EXPECT_FALSE(fs::exists(out));
}

// (n + b - 1) / b used to overflow: no training step, and 0.00% from a good model.
TEST_F(ToolFaults, BatchSizeNearTheInt64LimitTrainsAndEvaluates) {
  const std::string big = "9223372036854775807";
  const std::string ckpt = train_small("big.safetensors", "--batch-size " + big + " --epochs 3 --lr 0.5");
  Result eval = run("shrink-eval " + ckpt + " --data " + data() + " --batch-size " + big + " --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_GT(nlohmann::json::parse(eval.output)["accuracy"].get<double>(), 0.6) << eval.output;
}

TEST_F(ToolFaults, EmptyTestSplitIsAnError) {
  shrink::datasets::write_idx((dir_ / "t10k-images-idx3-ubyte").string(), {{0, 28, 28}, {}});
  shrink::datasets::write_idx((dir_ / "t10k-labels-idx1-ubyte.gz").string(), {{0}, {}});
  expect_clean_failure(run("shrink-train --epochs 0 --data " + data()), "holds no samples");
}

TEST_F(ToolFaults, FailingMetricsWriteIsAnError) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full to simulate a full disk";
  Result r = run("shrink-train --model mlp:784-16-2 --epochs 1 --data " + data() + " --metrics /dev/full --out " +
                 (dir_ / "m.safetensors").string());
  expect_clean_failure(r, "--metrics");
}

// An --out where no file can be created fails before any work, also where access() would
// let root through (/proc): the folder is tried with a file created and removed. The seed
// flag takes whole numbers of 64 bits only.
TEST_F(ToolFaults, UnwritableOutAndBadSeedsAreRefusedBeforeAnyWork) {
  const std::string ckpt = train_small("plain.safetensors");
  Result prune = run("shrink-prune " + ckpt + " --keep 0.5 --data " + data() + " --out /proc/pruned.safetensors");
  expect_clean_failure(prune, "--out /proc/pruned.safetensors");
  EXPECT_EQ(prune.output.find("magnitude in"), std::string::npos) << "pruned before failing";
  EXPECT_EQ(prune.output.find("round 1/1"), std::string::npos) << "pruned before failing";
  for (const std::string seed : {"-1", "99999999999999999999999", "1.5", "x"})
    expect_clean_failure(run("shrink-eval " + ckpt + " --latency-only --data " + data() + " --seed " + seed),
                         "--seed");
  EXPECT_EQ(run("shrink-eval " + ckpt + " --latency-only --data " + data() + " --seed 18446744073709551615").exit_code,
            0);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec))  // the probe file is gone
    EXPECT_EQ(entry.path().filename().string().find(".probe-"), std::string::npos) << entry.path();
}

// A --checkpoint-dir that cannot hold states fails before any training or pruning.
TEST_F(ToolFaults, UnusableCheckpointDirIsRefusedBeforeAnyWork) {
  const std::string file = train_small("plain.safetensors");  // a file where a folder should be
  Result train = run("shrink-train --model mlp:784-16-2 --epochs 1 --data " + data() + " --checkpoint-dir " + file +
                     " --out " + (dir_ / "t.safetensors").string());
  expect_clean_failure(train, "--checkpoint-dir " + file);
  EXPECT_EQ(train.output.find("epoch 1/1"), std::string::npos) << "trained before failing";
  Result prune = run("shrink-prune " + file + " --keep 0.5 --iterations 2 --data " + data() + " --checkpoint-dir " +
                     file + " --out " + (dir_ / "p.safetensors").string());
  expect_clean_failure(prune, "--checkpoint-dir " + file);
  const std::string fresh = (dir_ / "new" / "states").string();  // created with its parents
  ASSERT_EQ(run("shrink-train --model mlp:784-16-2 --epochs 1 --data " + data() + " --checkpoint-dir " + fresh +
                " --out " + (dir_ / "t.safetensors").string()).exit_code, 0);
  EXPECT_TRUE(fs::is_directory(fresh));
}

TEST_F(ToolFaults, StructuredPruningOfASparseCheckpointIsAnError) {
  const std::string dense = train_small("dense.safetensors");
  const std::string sparse = (dir_ / "sparse.safetensors").string();
  ASSERT_EQ(run("shrink-sparsify " + dense + " --method lottery --out " + sparse).exit_code, 0);
  expect_clean_failure(run("shrink-prune " + sparse + " --keep 0.5 --data " + data() + " --out " +
                           (dir_ / "p.safetensors").string()),
                       "nothing to prune");
}

// Structured SAP's hyperparameters reach the method (a smaller beta caps each layer's cut),
// are refused out of range naming shrink-prune's own flag, and only go with --method sap.
TEST_F(ToolFaults, SapOptionsOfShrinkPruneAreValidatedAndUsed) {
  const std::string ckpt = (dir_ / "m.safetensors").string();
  ASSERT_EQ(run("shrink-train --model mlp:784-64-32-2 --epochs 1 --data " + data() + " --out " + ckpt).exit_code, 0);
  const std::string out = (dir_ / "p.safetensors").string();
  auto widths_after = [&](const std::string& flags) {
    Result r = run("shrink-prune " + ckpt + " --method sap " + flags + " --json --data " + data() + " --out " + out);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return nlohmann::json::parse(r.output.substr(r.output.rfind("{\"accuracy"))).at("widths_after");
  };
  // eta_r = 1 scales the keep bound r by (1 + eta)^(-q/(q-p)) = 1/4 at p = 0.5, q = 1, so
  // about three quarters of each layer go, whatever the weights' PQI; beta caps that cut.
  const auto deep = widths_after("--sap-eta 1");
  EXPECT_LE(deep[1].get<int>(), 24) << "eta 1 keeps about a quarter of 64 units";
  const auto capped = widths_after("--sap-eta 1 --sap-beta 0.05");
  EXPECT_GE(capped[1].get<int>(), 60) << "beta 0.05 removes at most 5% of 64 units";
  EXPECT_GE(capped[2].get<int>(), 30) << "beta 0.05 removes at most 5% of 32 units";
  expect_clean_failure(run("shrink-prune " + ckpt + " --method sap --sap-p 2 --sap-q 1 --data " + data()), "--sap-p");
  expect_clean_failure(run("shrink-prune " + ckpt + " --method sap --sap-beta 0 --data " + data()), "--sap-beta");
  expect_clean_failure(run("shrink-prune " + ckpt + " --method sap --sap-eta nan --data " + data()), "--sap-eta");
  expect_clean_failure(run("shrink-prune " + ckpt + " --method magnitude --keep 0.5 --sap-gamma 2 --data " + data()),
                       "--sap-gamma applies to --method sap only");
}

}  // namespace
