// prune/activation_memo.h: the outputs a pruning run reuses between its per-group passes, and
// nn::Module's forward overrides under it. What must hold: a pruning run gives the same model,
// bit for bit, with and without the memo (every family, residual streams, global allocation,
// head importance); the memo does answer calls (so the test would catch a memo that never
// hits); and any change upstream — an in-place weight edit, a buffer, a replaced child, a
// different input — is seen, never answered from a stale output.
#include <gtest/gtest.h>

#include "core/shrink.h"
#include "nn/activation.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/sequential.h"
#include "prune/activation_memo.h"
#include "prune/group.h"
#include "prune/pruner.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::prune;
using shrink::testing::all_same;

namespace {

std::shared_ptr<nn::Module> build(const char* spec, std::uint64_t seed = 3) {
  Generator gen(seed);
  auto model = nn::build_model(spec, gen);
  // Non-trivial BatchNorm statistics, so that every module matters.
  Generator noise(seed + 100);
  for (auto& [name, t] : model->named_buffers())
    if (name.find("running_mean") != std::string::npos)
      model->set_buffer(name, Tensor::uniform(t.shape(), -0.3, 0.3, noise));
  return model;
}

Calibration calibration(const Shape& sample, std::int64_t n) {
  Generator gen(11);
  Shape shape{n};
  shape.insert(shape.end(), sample.begin(), sample.end());
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = (i * 7) % 10;
  return {Tensor::randn(shape, gen), Tensor::from_vector(labels, {n})};
}

void expect_same_models(nn::Module& got, nn::Module& want) {
  const auto a = got.state_dict(), b = want.state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    ASSERT_EQ(t.shape(), b.at(name).shape()) << name;
    EXPECT_TRUE(all_same(name, t.to_vector<float>(), b.at(name).to_vector<float>()));
  }
}

struct Case {
  const char* spec;
  Shape sample;
  const char* method;
  bool residual;
  Allocation allocation;
};

}  // namespace

TEST(ModuleOverride, StandsInForTheWholeCallUntilRemoved) {
  Generator gen(1);
  nn::Sequential model;
  model.push_back(std::make_shared<nn::Linear>(3, 2, true, gen));
  model.push_back(nn::make_activation("relu"));
  const Tensor x = Tensor::randn({4, 3}, gen);
  const Tensor plain = model(x);
  const Tensor fixed = Tensor::full({4, 2}, -1.5);
  int pre = 0, post = 0;
  auto& linear = *model.child("0");
  const auto h1 = linear.register_forward_pre_hook([&](nn::Module&, const Tensor&) { ++pre; });
  const auto h2 = linear.register_forward_hook([&](nn::Module&, const Tensor&, Tensor&) { ++post; });
  {
    const auto declines = linear.register_forward_override([](nn::Module&, const Tensor&) { return std::optional<Tensor>{}; });
    EXPECT_TRUE(all_same("declined", model(x).to_vector<float>(), plain.to_vector<float>()));
    EXPECT_EQ(pre, 1);
    EXPECT_EQ(post, 1);
    auto stands_in = linear.register_forward_override([&](nn::Module&, const Tensor&) { return std::optional<Tensor>{fixed}; });
    EXPECT_TRUE(all_same("overridden", model(x).to_vector<float>(), std::vector<float>(8, 0.0f)));  // relu(-1.5)
    EXPECT_EQ(pre, 1) << "an answered call must not run the pre-hooks";
    EXPECT_EQ(post, 1) << "an answered call must not run the forward hooks";
    stands_in.remove();
    EXPECT_TRUE(all_same("removed", model(x).to_vector<float>(), plain.to_vector<float>()));
  }
  EXPECT_EQ(pre, 2);
}

namespace {

// The same pruned model, bit for bit, with and without the memo.
void expect_same_pruning(const Case& c) {
  auto with = build(c.spec), without = build(c.spec);
  const Calibration calib = calibration(c.sample, 6);
  PruneOptions o;
  o.method = c.method;
  o.target = 0.5;
  o.prune_residual = c.residual;
  o.allocation = c.allocation;
  const PruneReport a = prune_model(*with, calib, o, c.sample);
  o.reuse_activations = false;
  const PruneReport b = prune_model(*without, calib, o, c.sample);
  ASSERT_EQ(a.groups.size(), b.groups.size());
  for (std::size_t i = 0; i < a.groups.size(); ++i) EXPECT_EQ(a.groups[i].after, b.groups[i].after);
  EXPECT_LT(with->num_parameters(), build(c.spec)->num_parameters());
  expect_same_models(*with, *without);
}

const char* const kResnet20 = "resnet20:in_channels=1";
const char* const kVit = "vit-tiny:depth=2,dim=32,heads=4,mlp=64";

}  // namespace

TEST(ActivationMemo, SamePruningResnet20) {
  expect_same_pruning({kResnet20, {1, 32, 32}, "taylor", false, Allocation::Uniform});
}
TEST(ActivationMemo, SamePruningResnet20ResidualStreams) {
  expect_same_pruning({kResnet20, {1, 32, 32}, "taylor", true, Allocation::Uniform});
}
TEST(ActivationMemo, SamePruningResnet20GlobalAllocation) {
  expect_same_pruning({kResnet20, {1, 32, 32}, "taylor", false, Allocation::Global});
}
TEST(ActivationMemo, SamePruningMobilenetv2) {
  expect_same_pruning({"mobilenetv2:cifar_stride=true,width=0.5,in_channels=1,input_size=16", {1, 16, 16}, "taylor",
                       false, Allocation::Uniform});
}
TEST(ActivationMemo, SamePruningLenet5) { expect_same_pruning({"lenet5", {1, 28, 28}, "taylor", false, Allocation::Uniform}); }
TEST(ActivationMemo, SamePruningVitHeadImportance) {
  expect_same_pruning({kVit, {1, 28, 28}, "head-importance", false, Allocation::Uniform});
}
TEST(ActivationMemo, SamePruningVitTaylor) {
  expect_same_pruning({kVit, {1, 28, 28}, "taylor", false, Allocation::Uniform});
}

// The memo answers calls upstream of the scored group, and sees every kind of change there.
TEST(ActivationMemo, ReusesUnchangedModulesAndSeesEveryChange) {
  const Shape sample{1, 32, 32};
  auto model = build(kResnet20);
  const std::vector<Group> groups = build_groups(*model, sample);
  const Group& late = groups.back();  // in the last stage: most of the network lies upstream
  const Calibration plain = calibration(sample, 8);
  Calibration memo = plain;
  memo.memo = std::make_shared<ActivationMemo>();
  auto same_as_plain = [&](const char* what) {
    const Scores got = score_taylor(*model, late, memo), want = score_taylor(*model, late, plain);
    EXPECT_TRUE(all_same(what, got, want));
    return got;
  };
  const Scores first = same_as_plain("first pass");
  EXPECT_EQ(memo.memo->hits(), 0);
  EXPECT_GT(memo.memo->stored_bytes(), 0);
  same_as_plain("second pass");
  const std::int64_t hits = memo.memo->hits();
  EXPECT_GT(hits, 0) << "nothing upstream was reused";

  // An in-place edit of the stem's weights (same tensor, same address, new values).
  static_cast<float*>(model->parameter("conv1.weight").raw_data())[0] += 0.5f;
  const Scores edited = same_as_plain("weight edited in place");
  EXPECT_FALSE(all_same("edited vs first", edited, first)) << "the edit should change the scores";
  // A buffer: the stem BN's running variance.
  static_cast<float*>(model->buffer("bn1.running_var").raw_data())[3] *= 4.0f;
  same_as_plain("buffer edited");
  // A replaced child with no tensors: the stem's ReLU becomes a tanh.
  model->set_child("relu", nn::make_activation("tanh"));
  same_as_plain("child replaced");
  // A different input batch of the same shape.
  Generator gen(99);
  Calibration other = plain;
  other.inputs = Tensor::randn(plain.inputs.shape(), gen);
  Calibration other_memo = other;
  other_memo.memo = memo.memo;
  EXPECT_TRUE(all_same("other input", score_taylor(*model, late, other_memo), score_taylor(*model, late, other)));
}

// A budget too small for any output: nothing is kept, every pass runs in full, same scores.
TEST(ActivationMemo, BeyondItsBudgetItKeepsNothing) {
  const Shape sample{1, 32, 32};
  auto model = build(kResnet20);
  const std::vector<Group> groups = build_groups(*model, sample);
  const Calibration plain = calibration(sample, 4);
  Calibration memo = plain;
  memo.memo = std::make_shared<ActivationMemo>(16);
  for (int pass = 0; pass < 2; ++pass)
    EXPECT_TRUE(all_same("tiny budget", score_taylor(*model, groups[4], memo), score_taylor(*model, groups[4], plain)));
  EXPECT_EQ(memo.memo->hits(), 0);
  EXPECT_EQ(memo.memo->stored_bytes(), 0);
}

// Only eval-mode calls are answered: in training mode BatchNorm uses (and updates) the batch's
// statistics.
TEST(ActivationMemo, AnswersOnlyInEvalMode) {
  auto model = build(kResnet20);
  const Tensor x = calibration({1, 32, 32}, 4).inputs;
  ActivationMemo memo;
  NoGradGuard no_grad;
  model->eval();
  {
    const auto handles = memo.attach(*model, {"linear"});
    const Tensor first = (*model)(x);
    EXPECT_EQ(memo.hits(), 0);
    EXPECT_TRUE(all_same("eval, again", (*model)(x).to_vector<float>(), first.to_vector<float>()));
    EXPECT_GT(memo.hits(), 0);
  }
  const std::int64_t hits = memo.hits();
  const auto handles = memo.attach(*model, {"linear"});
  model->train();
  (*model)(x);
  (*model)(x);
  EXPECT_EQ(memo.hits(), hits);
}
