// The CNN families through the binaries, as a user runs them: an image model built from its
// name takes its input shape and class count from the data set, trains, evaluates in eval
// mode, reproduces itself from the same seed, and a model that does not fit the data, or a
// checkpoint whose tensors belong to another model, is a clear error.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "tests/tool_fixture.h"

namespace {

namespace fs = std::filesystem;
using shrink::testing::Result;
using shrink::testing::run;
using shrink::testing::ToolsTest;

TEST_F(ToolsTest, Lenet5TakesItsShapeFromTheDataTrainsAndEvaluates) {
  const std::string ckpt = (dir_ / "lenet5.safetensors").string();
  Result train = run("shrink-train --model lenet5 --data " + data() +
                     " --epochs 2 --batch-size 32 --seed 5 --threads 2 --out " + ckpt);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  Result eval = run("shrink-eval " + ckpt + " --data " + data() + " --json --batch-size 16");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const auto j = nlohmann::json::parse(eval.output);
  EXPECT_GT(j["accuracy"].get<double>(), 0.9);  // the generated problem is linearly separable
  // The data set has 2 classes and 1x28x28 images: the spec says so.
  EXPECT_EQ(j["model"], (nlohmann::json{{"model", "lenet5"}, {"in_channels", 1}, {"input_size", 28}, {"classes", 2}}));
  // LeNet-5 with a 2-way head: 156 + 2416 + 48120 + 10164 + 170 values; MACs of the three
  // Linears and the two convs (28x28x6x25 + 10x10x16x150) counted by the op-level counter.
  EXPECT_EQ(j["params"].get<std::int64_t>(), 156 + 2416 + 48120 + 10164 + 170);
  EXPECT_GT(j["flops"].get<std::int64_t>(), 2 * (28 * 28 * 6 * 25 + 10 * 10 * 16 * 150));
  EXPECT_GT(j["latency_ms"].get<double>(), 0.0);
}

TEST_F(ToolsTest, EvalLatencyOnlySkipsTheTestPassAndKeepsTheCounts) {
  const std::string ckpt = (dir_ / "resnet20.safetensors").string();
  Result train = run("shrink-train --model resnet20 --data " + data() + " --epochs 0 --out " + ckpt);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  Result full = run("shrink-eval " + ckpt + " --data " + data() + " --json --batch-size 8 --threads 1");
  Result probe = run("shrink-eval " + ckpt + " --data " + data() + " --json --batch-size 8 --threads 1 --latency-only");
  ASSERT_EQ(full.exit_code, 0) << full.output;
  ASSERT_EQ(probe.exit_code, 0) << probe.output;
  const auto f = nlohmann::json::parse(full.output), p = nlohmann::json::parse(probe.output);
  EXPECT_FALSE(p.contains("accuracy")) << probe.output;
  EXPECT_FALSE(p.contains("loss")) << probe.output;
  EXPECT_TRUE(f.contains("accuracy")) << full.output;
  EXPECT_EQ(p["params"], f["params"]);
  EXPECT_EQ(p["flops"], f["flops"]);
  EXPECT_GT(p["latency_ms"].get<double>(), 0.0);
  EXPECT_EQ(p["latency_batch_size"].get<std::int64_t>(), 8);
}

TEST_F(ToolsTest, ResnetTrainsTheSameTwiceFromOneSeed) {
  auto loss = [&](const std::string& name) {
    const std::string ckpt = (dir_ / name).string();
    // A 16x16 crop of the problem would change the data; the CIFAR ResNet takes 28x28 as it is.
    Result r = run("shrink-train --model resnet20 --data " + data() +
                   " --epochs 1 --batch-size 64 --seed 9 --threads 2 --no-decay-norm-bias --out " + ckpt);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    Result e = run("shrink-eval " + ckpt + " --data " + data() + " --json --threads 2");
    EXPECT_EQ(e.exit_code, 0) << e.output;
    return nlohmann::json::parse(e.output)["loss"].get<double>();
  };
  EXPECT_EQ(loss("a.safetensors"), loss("b.safetensors"));
}

TEST_F(ToolsTest, AModelThatDoesNotFitTheDataNamesBothShapes) {
  Result channels = run("shrink-train --model resnet20:in_channels=3 --epochs 0 --data " + data());
  EXPECT_NE(channels.exit_code, 0);
  EXPECT_NE(channels.output.find("(3, 28, 28)"), std::string::npos) << channels.output;
  EXPECT_NE(channels.output.find("(1, 28, 28)"), std::string::npos) << channels.output;

  Result mlp = run("shrink-train --model mlp:3072-10 --epochs 0 --data " + data());
  EXPECT_NE(mlp.exit_code, 0);
  EXPECT_NE(mlp.output.find("(3072,)"), std::string::npos) << mlp.output;
  EXPECT_NE(mlp.output.find("784 values"), std::string::npos) << mlp.output;

  Result classes = run("shrink-train --model lenet5:classes=1 --epochs 0 --data " + data());
  EXPECT_NE(classes.exit_code, 0);
  EXPECT_NE(classes.output.find("2 classes"), std::string::npos) << classes.output;

  Result option = run("shrink-train --model resnet20:depth=3 --epochs 0 --data " + data());
  EXPECT_NE(option.exit_code, 0);
  EXPECT_NE(option.output.find("depth"), std::string::npos) << option.output;
}

TEST_F(ToolsTest, ACheckpointOfOneModelLoadedAsAnotherIsAnError) {
  // LeNet-5's tensors under a file whose spec says ResNet-20: what a renamed or hand-edited
  // file gives. Loading builds ResNet-20 and must name the file and a tensor, not crash.
  shrink::Generator gen(1);
  auto lenet = shrink::nn::build_model("lenet5", gen);
  lenet->set_builder_spec(nlohmann::json{{"model", "resnet20"}, {"in_channels", 1}, {"input_size", 28}}.dump());
  const std::string path = (dir_ / "mislabelled.safetensors").string();
  shrink::nn::save_checkpoint(path, *lenet, {});
  Result eval = run("shrink-eval " + path + " --data " + data());
  EXPECT_GE(eval.exit_code, 1) << eval.output;
  EXPECT_LE(eval.exit_code, 127) << eval.output;
  EXPECT_NE(eval.output.find(path), std::string::npos) << eval.output;
  EXPECT_NE(eval.output.find("conv1.weight"), std::string::npos) << eval.output;
}

}  // namespace

namespace {

TEST_F(ToolsTest, PruneRecalibratesBatchNormsOnlyWhenAsked) {
  const std::string dense = (dir_ / "dense.safetensors").string();
  // Untrained: every running variance is 1 and every running mean 0, which any statistics of
  // real activations differ from.
  ASSERT_EQ(run("shrink-train --model resnet20 --data " + data() + " --epochs 0 --out " + dense).exit_code, 0);
  auto prune = [&](const std::string& name, const std::string& flags) {
    const std::string out = (dir_ / name).string();
    Result r = run("shrink-prune " + dense + " --method magnitude --keep 0.5 --calib-samples 64 --threads 1 --data " +
                   data() + " --out " + out + " " + flags);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    shrink::Generator gen(0);
    return std::make_pair(r.output, shrink::nn::load_checkpoint(out, gen).model->buffer("layer1.0.bn1.running_var")
                                        .to_vector<float>());
  };
  const auto [plain_json, plain_var] = prune("plain.safetensors", "--json");
  const auto [recal_json, recal_var] = prune("recal.safetensors", "--json --recalibrate-bn");
  const auto [recal_text, text_var] = prune("text.safetensors", "--recalibrate-bn");
  EXPECT_EQ(nlohmann::json::parse(plain_json)["recalibrate_bn"], false);
  EXPECT_EQ(nlohmann::json::parse(recal_json)["recalibrate_bn"], true);
  EXPECT_EQ(plain_var, std::vector<float>(8, 1.0f));  // sliced to the 8 kept, never re-estimated
  ASSERT_EQ(recal_var.size(), 8u);
  for (float v : recal_var) EXPECT_NE(v, 1.0f);
  EXPECT_EQ(text_var, recal_var);  // the same seed and calibration batch
  EXPECT_NE(recal_text.find("recalibrated (beyond the seed papers): 21 BatchNorms"), std::string::npos) << recal_text;
}

// A parameter target below what the groups can reach (block-inner channels only: the residual
// streams, stem and classifier keep their size) is pruned as far as it goes and reported as
// not reached, on stderr and in the JSON; a reachable one is reported as met.
TEST_F(ToolsTest, PruneSaysWhenATargetCannotBeReached) {
  const std::string dense = (dir_ / "dense.safetensors").string();
  ASSERT_EQ(run("shrink-train --model resnet20 --data " + data() + " --epochs 0 --out " + dense).exit_code, 0);
  auto prune = [&](const std::string& flags) {
    Result r = run("shrink-prune " + dense + " --method magnitude --calib-samples 64 --threads 1 --batch-size 8 --json "
                   "--data " + data() + " --out " + (dir_ / "pruned.safetensors").string() + " " + flags);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    // The JSON is the last line (stdout); a warning (stderr) comes before it.
    const std::size_t end = r.output.find_last_not_of('\n');
    const std::size_t begin = r.output.rfind('\n', end);
    const std::string last = r.output.substr(begin == std::string::npos ? 0 : begin + 1);
    return std::make_pair(r.output, nlohmann::json::parse(last));
  };
  const auto [far_out, far] = prune("--target-params 0.001");
  EXPECT_EQ(far["target"]["flag"], "--target-params");
  EXPECT_EQ(far["target"]["met"], false) << far_out;
  const double reached = far["target"]["reached"].get<double>();
  EXPECT_NEAR(reached, far["params_after"].get<double>() / far["params_before"].get<double>(), 1e-9);
  EXPECT_GT(reached, 0.01);  // one unit in each block-inner group, every other layer whole
  EXPECT_NE(far_out.find("warning: --target-params 0.001 not reached"), std::string::npos) << far_out;
  EXPECT_NE(far_out.find("--prune-residual"), std::string::npos) << far_out;

  const auto [near_out, near] = prune("--target-flops 0.6");
  EXPECT_EQ(near["target"]["met"], true) << near_out;
  EXPECT_LE(near["target"]["reached"].get<double>(), 0.6);
  EXPECT_EQ(near_out.find("warning"), std::string::npos) << near_out;

  const auto [keep_out, keep] = prune("--keep 0.5");
  EXPECT_EQ(keep["target"]["flag"], "--keep") << keep_out;  // the JSON says what was asked
  EXPECT_EQ(keep["target"]["asked"], 0.5) << keep_out;
  EXPECT_EQ(keep["target"]["met"], true) << keep_out;  // a keep fraction is met by construction
  EXPECT_EQ(keep_out.find("nothing was pruned"), std::string::npos) << keep_out;

  // Rounded back up to every group's width: nothing removed, and said so.
  const auto [none_out, none] = prune("--keep 0.5 --round-to 1000");
  EXPECT_EQ(none["params_after"], none["params_before"]) << none_out;
  EXPECT_NE(none_out.find("warning: nothing was pruned"), std::string::npos) << none_out;
}

// --groups takes one comma-separated word: the checkpoint after it stays the checkpoint (the
// option had swallowed every word after it, and then asked for a checkpoint), a flag where its
// value should be is named, an empty name too; a residual stream named without --prune-residual
// is named with the flag it needs (it was "no group"). A tool's own errors carry its name once.
TEST_F(ToolsTest, GroupsTakeOneListAndAStreamNamesTheFlagItNeeds) {
  const std::string dense = (dir_ / "dense.safetensors").string();
  const std::string out = (dir_ / "pruned.safetensors").string();
  ASSERT_EQ(run("shrink-train --model resnet20 --data " + data() + " --epochs 0 --out " + dense).exit_code, 0);
  // Batches of 8: the report's latency probe times batches of this size (the sanitizer builds run
  // this test too).
  const std::string common = " --method magnitude --keep 0.5 --calib-samples 64 --threads 1 --batch-size 8 --data " +
                             data() + " --out " + out;
  Result one = run("shrink-prune --groups layer1.0.conv1,layer2.1.conv1 " + dense + common + " --json");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const std::size_t end = one.output.find_last_not_of('\n'), begin = one.output.rfind('\n', end);  // JSON: the last line
  const auto j = nlohmann::json::parse(one.output.substr(begin == std::string::npos ? 0 : begin + 1));
  ASSERT_EQ(j["groups"].size(), 2u) << one.output;
  for (const auto& g : j["groups"]) EXPECT_EQ(g["after"].get<std::int64_t>() * 2, g["before"].get<std::int64_t>()) << g;

  Result flag = run("shrink-prune " + dense + " --groups --keep 0.5 --data " + data() + " --out " + out);
  EXPECT_NE(flag.exit_code, 0);
  EXPECT_NE(flag.output.find("--groups: needs comma-separated names, got the flag-like word --keep"),
            std::string::npos) << flag.output;
  Result empty = run("shrink-prune " + dense + " --groups layer1.0.conv1,,layer2.1.conv1" + common);
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_NE(empty.output.find("without an empty one"), std::string::npos) << empty.output;

  Result stream = run("shrink-prune " + dense + " --groups layer2.0.conv2" + common);
  EXPECT_EQ(stream.exit_code, 1) << stream.output;
  EXPECT_NE(stream.output.find("'layer2.0.conv2' is a residual stream"), std::string::npos) << stream.output;
  EXPECT_NE(stream.output.find("--prune-residual"), std::string::npos) << stream.output;
  EXPECT_EQ(run("shrink-prune " + dense + " --groups layer2.0.conv2 --prune-residual" + common).exit_code, 0);
  Result unknown = run("shrink-prune " + dense + " --groups layer9.conv1" + common);
  EXPECT_NE(unknown.output.find("has no group 'layer9.conv1'; its groups are: layer1.0.conv1"), std::string::npos)
      << unknown.output;

  Result zero = run("shrink-prune " + dense + " --method magnitude --target-params 0 --data " + data() + " --out " + out);
  EXPECT_EQ(zero.exit_code, 1) << zero.output;
  EXPECT_NE(zero.output.find("shrink-prune: error: --target-params must be above 0"), std::string::npos) << zero.output;
}

// shrink-sparsify's output takes the inputs its dense model took: the recorded input size
// carries over (shrink-eval on it had asked for --input-size again). A round that would remove
// every weight of a layer (sap with a large gamma and beta 1) is refused and writes nothing: the
// model would predict one class whatever its input.
TEST_F(ToolsTest, SparsifyKeepsTheInputSizeAndNeverEmptiesALayer) {
  const std::string dense = (dir_ / "lenet5.safetensors").string();
  const std::string sparse = (dir_ / "sparse.safetensors").string();
  ASSERT_EQ(run("shrink-train --model lenet5 --data " + data() + " --input-size 32 --epochs 0 --out " + dense).exit_code,
            0);
  ASSERT_EQ(run("shrink-sparsify " + dense + " --method lottery --fraction 0.5 --out " + sparse).exit_code, 0);
  Result eval = run("shrink-eval " + sparse + " --data " + data() + " --json");
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_EQ(nlohmann::json::parse(eval.output)["model"]["input_size"], 32) << eval.output;

  const std::string emptied = (dir_ / "emptied.safetensors").string();
  Result all = run("shrink-sparsify " + dense + " --method sap --gamma 10 --beta 1 --out " + emptied);
  EXPECT_EQ(all.exit_code, 1) << all.output;
  EXPECT_NE(all.output.find("would remove all"), std::string::npos) << all.output;
  EXPECT_FALSE(fs::exists(emptied));
  Result whole = run("shrink-sparsify " + dense + " --method lottery --fraction 1 --out " + emptied);
  EXPECT_EQ(whole.exit_code, 1) << whole.output;
  EXPECT_NE(whole.output.find("--fraction must be below 1"), std::string::npos) << whole.output;
}

// --list-groups names each group with its units, producers and readers; with --json it is one
// JSON object like every other --json output (it printed the text table).
TEST_F(ToolsTest, ListGroupsAsTextAndAsJson) {
  const std::string dense = (dir_ / "dense.safetensors").string();
  ASSERT_EQ(run("shrink-train --model resnet20 --data " + data() + " --epochs 0 --out " + dense).exit_code, 0);
  Result text = run("shrink-prune " + dense + " --list-groups --prune-residual");
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("layer1.0.conv1"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("residual stream"), std::string::npos) << text.output;
  Result js = run("shrink-prune " + dense + " --list-groups --prune-residual --json");
  ASSERT_EQ(js.exit_code, 0) << js.output;
  const auto j = nlohmann::json::parse(js.output);
  ASSERT_TRUE(j["groups"].is_array());
  EXPECT_EQ(j["groups"].size(), 12u);  // 9 blocks' inner channels + 3 stage streams
  int streams = 0;
  for (const auto& g : j["groups"]) {
    EXPECT_GT(g["units"].get<std::int64_t>(), 0);
    EXPECT_FALSE(g["consumers"].empty()) << g;
    streams += g["residual"].get<bool>() ? 1 : 0;
  }
  EXPECT_EQ(streams, 3);
  Result inner = run("shrink-prune " + dense + " --list-groups --json");
  EXPECT_EQ(nlohmann::json::parse(inner.output)["groups"].size(), 9u);
}

// shrink-train continuing a checkpoint writes the result to another file: --out naming the
// --model checkpoint (the same path or another spelling of it) is refused before any work and
// the file is left as it was.
TEST_F(ToolsTest, TrainRefusesToWriteOverTheCheckpointItContinues) {
  const std::string model = (dir_ / "model.safetensors").string();
  ASSERT_EQ(run("shrink-train --model lenet-300-100 --data " + data() + " --epochs 0 --out " + model).exit_code, 0);
  const auto size = fs::file_size(model);
  const auto time = fs::last_write_time(model);
  for (const std::string& out : {model, (dir_ / "." / "model.safetensors").string()}) {
    Result r = run("shrink-train --model " + model + " --data " + data() + " --epochs 1 --out " + out);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("is the input"), std::string::npos) << r.output;
  }
  EXPECT_EQ(fs::file_size(model), size);
  EXPECT_EQ(fs::last_write_time(model), time);
}

}  // namespace
