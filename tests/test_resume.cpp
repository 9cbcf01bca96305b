// Resuming the tools, as a user would: shrink-train continued from a state saved at an epoch
// boundary (SGD) or mid-epoch (AdamW with dropout) ends with the uninterrupted run's
// weights and printed figures; a corrupt newest state falls back with a warning; flags that
// contradict the saved run are refused by name; shrink-prune resumes its rounds.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <string>

#include "nn/run_state.h"
#include "tests/generated_idx.h"
#include "tests/resume_helpers.h"
#include "tests/tool_runner.h"

namespace {

namespace fs = std::filesystem;
using shrink::testing::run_tool;
using shrink::testing::same_weights;
using shrink::testing::ScratchDir;

class ResumeTool : public ::testing::Test {
 protected:
  void SetUp() override { data_ = shrink::testing::write_idx_dataset(dir_.path(), 384, 96, 5); }
  // Drops every saved state newer than `index`, as if the run had been killed right after it.
  void keep_up_to(const std::string& state_dir, std::int64_t index) {
    for (std::int64_t i : shrink::nn::run_state_indices(state_dir))
      if (i > index) fs::remove_all(fs::path(state_dir) / ("state-" + std::string(12 - std::to_string(i).size(), '0') +
                                                            std::to_string(i)));
  }
  // The "train loss ... acc ..." figures of the last epoch line a run printed.
  static std::string last_epoch_figures(const std::string& output) {
    static const std::regex line(R"(epoch \d+/\d+  lr \S+  train loss \S+ acc \S+  test loss \S+ acc \S+)");
    std::string last;
    for (std::sregex_iterator it(output.begin(), output.end(), line), end; it != end; ++it) last = it->str();
    return last;
  }
  ScratchDir dir_{"resume"};
  std::string data_;
};

TEST_F(ResumeTool, EpochBoundarySgdIsBitIdentical) {
  const std::string run = "shrink-train --model mlp:784-24-2 --data " + data_ +
                          " --epochs 3 --batch-size 32 --seed 4 --threads 1 --optimizer sgd --nesterov";
  ASSERT_EQ(run_tool(run + " --out " + (dir_ / "full.safetensors")).exit_code, 0);
  const std::string states = dir_ / "states";
  auto first = run_tool(run + " --out " + (dir_ / "first.safetensors") + " --checkpoint-dir " + states +
                        " --keep-checkpoints 5");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_TRUE(same_weights(dir_ / "full.safetensors", dir_ / "first.safetensors")) << "saving changed the run";
  ASSERT_EQ(shrink::nn::run_state_indices(states), (std::vector<std::int64_t>{12, 24, 36}));  // 12 steps/epoch
  keep_up_to(states, 12);  // killed during epoch 2
  auto resumed = run_tool("shrink-train --resume " + states + " --out " + (dir_ / "resumed.safetensors"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming at epoch 2, step 0"), std::string::npos) << resumed.output;
  EXPECT_TRUE(same_weights(dir_ / "full.safetensors", dir_ / "resumed.safetensors"));
  EXPECT_EQ(last_epoch_figures(resumed.output), last_epoch_figures(first.output));
  EXPECT_TRUE(shrink::testing::temp_files_under(dir_.path()).empty());
}

TEST_F(ResumeTool, MidEpochAdamWWithDropoutIsBitIdentical) {
  const std::string run = "shrink-train --model mlp:784-24-16-2 --dropout 0.25 --data " + data_ +
                          " --epochs 2 --batch-size 32 --seed 8 --threads 2 --optimizer adamw --lr 0.003"
                          " --schedule warmup:1+cosine";
  auto full = run_tool(run + " --out " + (dir_ / "full.safetensors"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const std::string states = dir_ / "states";
  ASSERT_EQ(run_tool(run + " --out " + (dir_ / "first.safetensors") + " --checkpoint-dir " + states +
                     " --checkpoint-every 5 --keep-checkpoints 9").exit_code, 0);
  keep_up_to(states, 15);  // step 15: 3 steps into epoch 2
  // Overridable flags may change; the weights do not (same thread count).
  auto resumed = run_tool("shrink-train --resume " + states + " --threads 2 --keep-checkpoints 3 --out " +
                          (dir_ / "resumed.safetensors"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming at epoch 2, step 3 of the epoch (step 15 of the run)"), std::string::npos)
      << resumed.output;
  EXPECT_TRUE(same_weights(dir_ / "full.safetensors", dir_ / "resumed.safetensors"));
  // The resumed epoch's running tally carried on: its printed figures are the uninterrupted run's.
  EXPECT_EQ(last_epoch_figures(resumed.output), last_epoch_figures(full.output));
  EXPECT_LE(shrink::nn::run_state_indices(states).size(), 3u);
}

TEST_F(ResumeTool, CorruptNewestFallsBackWithAWarning) {
  const std::string run = "shrink-train --model mlp:784-16-2 --data " + data_ +
                          " --epochs 2 --batch-size 64 --seed 1 --threads 1";
  ASSERT_EQ(run_tool(run + " --out " + (dir_ / "full.safetensors")).exit_code, 0);
  const std::string states = dir_ / "states";
  ASSERT_EQ(run_tool(run + " --checkpoint-dir " + states + " --out " + (dir_ / "x.safetensors")).exit_code, 0);
  const fs::path newest = fs::path(states) / "state-000000000012" / "model.safetensors";
  ASSERT_TRUE(fs::exists(newest));
  fs::resize_file(newest, fs::file_size(newest) - 100);
  auto resumed = run_tool("shrink-train --resume " + states + " --out " + (dir_ / "resumed.safetensors"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("warning: skipping " + states + "/state-000000000012"), std::string::npos)
      << resumed.output;
  EXPECT_TRUE(same_weights(dir_ / "full.safetensors", dir_ / "resumed.safetensors"));

  // Nothing loadable: the error names the folder.
  for (const auto& state : fs::directory_iterator(states)) fs::resize_file(state.path() / "state.safetensors", 3);
  auto none = run_tool("shrink-train --resume " + states);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("no loadable state in " + states), std::string::npos) << none.output;
}

TEST_F(ResumeTool, FlagsThatContradictTheSavedRunAreRefused) {
  const std::string states = dir_ / "states";
  ASSERT_EQ(run_tool("shrink-train --model mlp:784-16-2 --data " + data_ + " --epochs 1 --batch-size 64 --lr 0.05"
                     " --seed 1 --threads 1 --checkpoint-dir " + states + " --out " + (dir_ / "a.safetensors"))
                .exit_code, 0);
  auto lr = run_tool("shrink-train --resume " + states + " --lr 0.1");
  EXPECT_EQ(lr.exit_code, 1);
  EXPECT_NE(lr.output.find("--lr 0.1 contradicts the run saved in " + states), std::string::npos) << lr.output;
  auto same = run_tool("shrink-train --resume " + states + " --lr 0.050 --epochs 1 --out " + (dir_ / "b.safetensors"));
  EXPECT_EQ(same.exit_code, 0) << same.output;  // repeating a saved value is fine
  auto both = run_tool("shrink-train --resume " + states + " --checkpoint-dir " + states);
  EXPECT_NE(both.exit_code, 0);
  auto every = run_tool("shrink-train --checkpoint-every 3 --epochs 0 --out " + (dir_ / "c.safetensors"));
  EXPECT_EQ(every.exit_code, 1);
  EXPECT_NE(every.output.find("--checkpoint-every needs --checkpoint-dir"), std::string::npos) << every.output;
  auto missing = run_tool("shrink-train --resume " + (dir_ / "nowhere"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find(dir_ / "nowhere"), std::string::npos) << missing.output;
  const std::string empty = dir_ / "empty";
  fs::create_directories(empty);
  auto none = run_tool("shrink-train --resume " + empty);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.output.find("no saved state"), std::string::npos) << none.output;
}

TEST_F(ResumeTool, PruneRoundsResumeBitIdentically) {
  const std::string base = dir_ / "base.safetensors";
  ASSERT_EQ(run_tool("shrink-train --model mlp:784-32-16-2 --data " + data_ + " --epochs 1 --batch-size 32 --seed 2"
                     " --threads 1 --out " + base).exit_code, 0);
  const std::string run = "shrink-prune " + base + " --method taylor --target-params 0.5 --iterations 3"
                          " --finetune-epochs 1 --calib-samples 64 --batch-size 32 --data " + data_ +
                          " --seed 6 --threads 1";
  ASSERT_EQ(run_tool(run + " --out " + (dir_ / "full.safetensors")).exit_code, 0);
  const std::string states = dir_ / "states";
  ASSERT_EQ(run_tool(run + " --out " + (dir_ / "first.safetensors") + " --checkpoint-dir " + states +
                     " --keep-checkpoints 3").exit_code, 0);
  ASSERT_EQ(shrink::nn::run_state_indices(states), (std::vector<std::int64_t>{1, 2, 3}));
  keep_up_to(states, 1);
  auto resumed = run_tool("shrink-prune --resume " + states + " --out " + (dir_ / "resumed.safetensors"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming after round 1 of 3"), std::string::npos) << resumed.output;
  EXPECT_TRUE(same_weights(dir_ / "full.safetensors", dir_ / "resumed.safetensors"));
  auto contradict = run_tool("shrink-prune --resume " + states + " --target-params 0.3");
  EXPECT_EQ(contradict.exit_code, 1);
  EXPECT_NE(contradict.output.find("--target-params 0.3 contradicts"), std::string::npos) << contradict.output;
  // Resuming never writes over the pruned model's input either.
  auto over_input = run_tool("shrink-prune --resume " + states + " --out " + base);
  EXPECT_EQ(over_input.exit_code, 1);
  EXPECT_NE(over_input.output.find("is the input"), std::string::npos) << over_input.output;
}

TEST_F(ResumeTool, PruneResumeKeepsRecalibratingTheBatchNorms) {
  // Two rounds with --recalibrate-bn: the resumed second round must re-estimate the BatchNorms
  // as the uninterrupted one did (the flag comes back from the saved settings), or its
  // running statistics differ from the full run's.
  const std::string base = dir_ / "resnet.safetensors";
  ASSERT_EQ(run_tool("shrink-train --model resnet20 --data " + data_ + " --epochs 0 --out " + base).exit_code, 0);
  const std::string run = "shrink-prune " + base + " --method magnitude --keep 0.5 --iterations 2 --recalibrate-bn"
                          " --calib-samples 32 --data " + data_ + " --seed 4 --threads 1";
  ASSERT_EQ(run_tool(run + " --out " + (dir_ / "full.safetensors")).exit_code, 0);
  const std::string states = dir_ / "states";
  ASSERT_EQ(run_tool(run + " --out " + (dir_ / "first.safetensors") + " --checkpoint-dir " + states).exit_code, 0);
  keep_up_to(states, 1);
  auto resumed = run_tool("shrink-prune --resume " + states + " --out " + (dir_ / "resumed.safetensors"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("recalibrated (beyond the seed papers)"), std::string::npos) << resumed.output;
  EXPECT_TRUE(same_weights(dir_ / "full.safetensors", dir_ / "resumed.safetensors"));
}

}  // namespace
