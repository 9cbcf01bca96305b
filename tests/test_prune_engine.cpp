// prune/ engine: group building (prune/group.h) and the one rewrite primitive
// (prune/slice.h), checked by function-preserving identities on the mlp family.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/shrink.h"
#include "nn/checkpoint.h"
#include "nn/flops.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "prune/group.h"
#include "prune/slice.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::prune;
namespace fs = std::filesystem;

namespace {

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

std::vector<std::int64_t> every(std::int64_t step, std::int64_t n, std::int64_t offset = 0) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = offset; i < n; i += step) out.push_back(i);
  return out;
}

void expect_close(const Tensor& a, const Tensor& b, double tol) {
  ASSERT_EQ(a.shape(), b.shape());
  const auto va = values(a), vb = values(b);
  for (std::size_t i = 0; i < va.size(); ++i) ASSERT_NEAR(va[i], vb[i], tol) << "element " << i;
}

Tensor forward(nn::Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  model.eval();
  return model(x);
}

// Sets entries of `tensor` (axis 0 or 1 of a matrix, axis 0 of a vector) outside `kept` to 0.
void zero_outside(nn::Module& model, const std::string& tensor, int axis,
                  const std::vector<std::int64_t>& kept) {
  Tensor& t = model.parameter(tensor);
  auto v = values(t);
  const std::int64_t rows = t.size(0), cols = t.dim() == 2 ? t.size(1) : 1;
  auto is_kept = [&](std::int64_t i) { return std::find(kept.begin(), kept.end(), i) != kept.end(); };
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      if (!is_kept(axis == 0 ? r : c)) v[static_cast<std::size_t>(r * cols + c)] = 0.0f;
  model.set_parameter(tensor, Tensor::from_vector(v, t.shape()));
}

using shrink::testing::error_of;

}  // namespace

TEST(PruneEngine, LenetHasTwoGroupsAndTheClassifierIsNeverPruned) {
  Generator gen(1);
  auto model = nn::build_model("lenet-300-100", gen);  // 0 Flatten, 1 Linear, 2 ReLU, 3, 4, 5
  const auto groups = build_groups(*model);
  ASSERT_EQ(groups.size(), 2u);
  const std::vector<Member> first{{"1.weight", 0}, {"1.bias", 0}, {"3.weight", 1}};
  const std::vector<Member> second{{"3.weight", 0}, {"3.bias", 0}, {"5.weight", 1}};
  EXPECT_EQ(groups[0].members, first);
  EXPECT_EQ(groups[1].members, second);
  EXPECT_EQ(groups[0].size, 300);
  EXPECT_EQ(groups[1].size, 100);
  EXPECT_EQ(groups[0].producer, "1");
  EXPECT_EQ(groups[0].activation, "2");
  EXPECT_EQ(groups[0].consumer, "3");
  EXPECT_EQ(groups[1].producer, "3");
  EXPECT_EQ(groups[1].activation, "4");
  EXPECT_EQ(groups[1].consumer, "5");
  for (const Group& g : groups)
    for (const Member& m : g.members)
      EXPECT_FALSE(m.axis == 0 && (m.tensor == "5.weight" || m.tensor == "5.bias"))
          << "the classifier's outputs are in group " << g.name;
}

TEST(PruneEngine, RemovingUnitsWithZeroOutgoingWeightsPreservesOutputs) {
  Generator gen(2);
  auto model = nn::build_model("lenet-300-100", gen);
  auto groups = build_groups(*model);
  const auto kept0 = every(3, 300), kept1 = every(2, 100, 1);
  zero_outside(*model, "3.weight", 1, kept0);  // consumer columns of the dropped units = 0
  zero_outside(*model, "5.weight", 1, kept1);
  const Tensor x = Tensor::randn({16, 1, 28, 28}, gen);
  const Tensor before = forward(*model, x);
  shrink_group(*model, groups[0], kept0);
  shrink_group(*model, groups[1], kept1);
  EXPECT_EQ(groups[0].size, 100);
  EXPECT_EQ(groups[1].size, 50);
  EXPECT_EQ(model->parameter("3.weight").shape(), (Shape{50, 100}));
  expect_close(forward(*model, x), before, 1e-5);
}

TEST(PruneEngine, ShrunkModelEqualsMaskedModel) {
  Generator gen(3);
  auto shrunk = nn::build_model("lenet-300-100", gen);
  Generator same(3);
  auto masked = nn::build_model("lenet-300-100", same);
  auto groups = build_groups(*shrunk);
  const std::vector<std::int64_t> kept0{0, 5, 17, 42, 99, 150, 299}, kept1 = every(7, 100, 3);
  // Masking: the producer's rows and bias and the consumer's columns of dropped units are 0.
  for (auto [g, kept] : {std::pair{0, kept0}, std::pair{1, kept1}})
    for (const Member& m : groups[static_cast<std::size_t>(g)].members) zero_outside(*masked, m.tensor, m.axis, kept);
  shrink_group(*shrunk, groups[0], kept0);
  shrink_group(*shrunk, groups[1], kept1);
  const Tensor x = Tensor::randn({32, 784}, gen);
  expect_close(forward(*shrunk, x), forward(*masked, x), 1e-5);
  // The kept weights are the masked model's, unchanged.
  const auto idx = Tensor::from_vector(kept0, {7});
  EXPECT_EQ(values(shrunk->parameter("1.weight")), values(index_select(masked->parameter("1.weight"), 0, idx)));
}

TEST(PruneEngine, ParameterAndFlopCountsMatchTheClosedForm) {
  Generator gen(4);
  auto model = nn::build_model("lenet-300-100", gen);
  auto groups = build_groups(*model);
  shrink_group(*model, groups[0], every(1, 217));
  shrink_group(*model, groups[1], every(3, 100));  // 34 units
  const std::int64_t w1 = 217, w2 = 34;
  EXPECT_EQ(model->num_parameters(), 784 * w1 + w1 + w1 * w2 + w2 + w2 * 10 + 10);
  EXPECT_EQ(nn::flops_per_sample(*model, {1, 28, 28}),
            2 * (784 * w1 + w1 * w2 + w2 * 10) + (w1 + w2 + 10));
  EXPECT_EQ(nn::layer_widths(*model), (std::vector<std::int64_t>{784, w1, w2, 10}));
}

TEST(PruneEngine, PrunedCheckpointReloadsWithTheSameOutputs) {
  const fs::path dir = fs::temp_directory_path() / ("shrink_prune_engine_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Generator gen(5);
  auto model = nn::build_model("lenet-300-100", gen);
  auto groups = build_groups(*model);
  shrink_group(*model, groups[0], every(4, 300, 1));
  shrink_group(*model, groups[1], every(5, 100, 2));
  const std::string path = (dir / "pruned.safetensors").string();
  nn::save_checkpoint(path, *model);
  Generator other(99);
  nn::Checkpoint ckpt = nn::load_checkpoint(path, other);
  fs::remove_all(dir);
  EXPECT_EQ(nn::layer_widths(*ckpt.model), (std::vector<std::int64_t>{784, 75, 20, 10}));
  EXPECT_EQ(nn::model_spec(*ckpt.model), ckpt.spec);
  const Tensor x = Tensor::randn({8, 1, 28, 28}, gen);
  EXPECT_EQ(values(forward(*ckpt.model, x)), values(forward(*model, x)));
  // The reloaded model prunes again.
  auto again = build_groups(*ckpt.model);
  EXPECT_EQ(again[0].size, 75);
  shrink_group(*ckpt.model, again[0], {0, 74});
  EXPECT_EQ(ckpt.model->parameter("3.weight").shape(), (Shape{20, 2}));
}

// One training step so the optimizer has state for every parameter.
void train_step(nn::Module& model, nn::Optimizer& opt, Generator& gen) {
  model.train();
  opt.zero_grad();
  const Tensor x = Tensor::randn({4, 784}, gen);
  const Tensor y = Tensor::from_vector(std::vector<std::int64_t>{1, 2, 3, 4}, {4});
  cross_entropy(model(x), y).backward();
  opt.step();
}

TEST(PruneEngine, OptimizerStateIsSlicedWithTheWeights) {
  for (const char* which : {"sgd", "adamw"}) {
    SCOPED_TRACE(which);
    Generator gen(6);
    auto model = nn::build_model("lenet-300-100", gen);
    std::unique_ptr<nn::Optimizer> opt;
    if (std::string(which) == "sgd") opt = std::make_unique<nn::SGD>(model->named_parameters(), 0.1, 0.9);
    else opt = std::make_unique<nn::AdamW>(model->named_parameters(), 1e-3);
    train_step(*model, *opt, gen);
    const std::vector<std::int64_t> kept{2, 3, 50, 299};
    const Tensor idx = Tensor::from_vector(kept, {4});
    std::map<std::string, std::map<std::string, std::vector<float>>> expected;
    for (const auto& [name, axis] : {std::pair{"1.weight", 0}, {"1.bias", 0}, {"3.weight", 1}})
      for (auto& [key, state] : opt->state().at(name))
        expected[name][key] = values(index_select(state, axis, idx));
    auto groups = build_groups(*model);
    model->parameter("1.weight").set_grad(Tensor::ones({300, 784}));
    shrink_group(*model, groups[0], kept, opt.get());
    EXPECT_EQ(model->parameter("1.weight").grad().shape(), (Shape{4, 784}));  // gradient sliced too
    for (auto& [name, states] : expected)
      for (auto& [key, want] : states) {
        const Tensor& got = opt->state().at(name).at(key);
        EXPECT_EQ(got.shape(), model->parameter(name).shape()) << name << " " << key;
        EXPECT_EQ(values(got), want) << name << " " << key;
      }
    // The optimizer now holds the shrunk tensors and keeps training them.
    for (const auto& [name, p] : opt->named_parameters())
      EXPECT_EQ(p.impl(), model->parameter(name).impl()) << name;
    const auto before = values(model->parameter("1.weight"));
    EXPECT_NO_THROW(train_step(*model, *opt, gen));
    EXPECT_NE(values(model->parameter("1.weight")), before);
  }
}

TEST(PruneEngine, BadKeptListsThrowClearErrors) {
  Generator gen(7);
  auto model = nn::build_model("mlp:6-5-3", gen);
  auto groups = build_groups(*model);
  ASSERT_EQ(groups.size(), 1u);
  Group& g = groups[0];
  EXPECT_NE(error_of([&] { shrink_group(*model, g, {}); }).find("keeps at least one"), std::string::npos);
  EXPECT_NE(error_of([&] { shrink_group(*model, g, {3, 1}); }).find("sorted"), std::string::npos);
  EXPECT_NE(error_of([&] { shrink_group(*model, g, {1, 1}); }).find("unique"), std::string::npos);
  EXPECT_NE(error_of([&] { shrink_group(*model, g, {0, 5}); }).find("out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { shrink_group(*model, g, {-1}); }).find("out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { slice(*model, "1.weight", 0, {}); }).find("1.weight"), std::string::npos);
  // Nothing changed on failure.
  EXPECT_EQ(g.size, 5);
  EXPECT_EQ(model->parameter("1.weight").shape(), (Shape{5, 6}));
  EXPECT_EQ(model->parameter("3.weight").shape(), (Shape{3, 5}));
}

TEST(PruneEngine, AGroupNeverReachesZeroUnits) {
  Generator gen(8);
  auto model = nn::build_model("mlp:4-3-2", gen);
  auto groups = build_groups(*model);
  shrink_group(*model, groups[0], {1});  // one unit is the floor
  EXPECT_EQ(groups[0].size, 1);
  EXPECT_EQ(group_size(*model, groups[0]), 1);
  EXPECT_THROW(shrink_group(*model, groups[0], {}), Error);
  EXPECT_EQ(group_size(*model, groups[0]), 1);
  const Tensor x = Tensor::randn({2, 4}, gen);
  EXPECT_EQ(forward(*model, x).shape(), (Shape{2, 2}));
}
