// Pruning transformers (issue 12): attention heads and FFN neurons as the groups the encoder
// layers declare (nn::Module::declared_groups), shrunk physically. Function-preserving checks
// as for the CNNs: zeroed heads or neurons removed give the same outputs, shrunk = masked,
// reloads with the right head counts, optimizer state sliced, every method runs, and a layer
// never loses its last head.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/shrink.h"
#include "datasets/sequence_task.h"
#include "nn/attention.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "prune/group.h"
#include "prune/methods.h"
#include "prune/pruner.h"
#include "prune/slice.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::prune;
using namespace shrink::testing;

namespace {

// A small vit-tiny: 28x28 images, patch 7 (17 tokens), d 16, 2 layers of 4 heads (head_dim 4), FFN 24.
const nlohmann::json kVit = {{"model", "vit-tiny"}, {"dim", 16}, {"heads", 4}, {"mlp", 24}, {"depth", 2},
                             {"dropout", 0.0}};

std::shared_ptr<nn::Module> build(const nlohmann::json& spec, std::uint64_t seed = 1) {
  Generator gen(seed);
  auto m = nn::build_from_spec(spec, gen);
  m->eval();
  return m;
}

Tensor images(std::int64_t n, std::uint64_t seed) {
  Generator gen(seed);
  return Tensor::randn({n, 1, 28, 28}, gen);
}

const Group& named(const std::vector<Group>& groups, const std::string& name) {
  for (const Group& g : groups)
    if (g.name == name) return g;
  ADD_FAILURE() << "no group " << name;
  return groups.front();
}

// Zeroes columns [begin, end) of a 2-D parameter (a consumer's view of removed units).
void zero_columns(nn::Module& m, const std::string& name, std::int64_t begin, std::int64_t end) {
  Tensor& w = m.parameter(name);
  std::vector<float> v = w.to_vector<float>();
  for (std::int64_t r = 0; r < w.size(0); ++r)
    for (std::int64_t c = begin; c < end; ++c) v[r * w.size(1) + c] = 0;
  m.set_parameter(name, Tensor::from_vector(v, w.shape()));
}

}  // namespace

TEST(PruneTransformer, EachLayerDeclaresItsHeadsAndItsFfnNeurons) {
  auto model = build(kVit);
  const auto groups = build_groups(*model, nn::input_shape(kVit));
  ASSERT_EQ(groups.size(), 4u);
  EXPECT_EQ(groups[0].name, "encoder.layers.0.self_attn");
  EXPECT_EQ(groups[0].size, 4);  // heads, not the 16 rows of q_proj
  EXPECT_EQ(groups[0].consumer, "encoder.layers.0.self_attn.out_proj");
  EXPECT_EQ(groups[0].reads.front().block, 4);
  EXPECT_EQ(groups[0].producers.size(), 3u);
  EXPECT_EQ(groups[1].name, "encoder.layers.0.linear1");
  EXPECT_EQ(groups[1].size, 24);
  EXPECT_EQ(groups[1].producer, "encoder.layers.0.linear1");
  EXPECT_EQ(groups[1].consumer, "encoder.layers.0.linear2");
  EXPECT_EQ(groups[3].name, "encoder.layers.1.linear1");
  const std::string refused = error_of([&] { build_groups(*model, nn::input_shape(kVit), GroupOptions{true, false}); });
  EXPECT_NE(refused.find("attention heads"), std::string::npos) << refused;
}

TEST(PruneTransformer, ShrunkEqualsMaskedAndZeroedUnitsRemovedChangeNothing) {
  auto model = build(kVit, 2), masked = build(kVit, 2);
  auto groups = build_groups(*model, nn::input_shape(kVit));
  const Tensor x = images(3, 4);
  // Layer 0 keeps heads 1 and 3: masking is zeroing the other heads' out_proj columns.
  zero_columns(*masked, "encoder.layers.0.self_attn.out_proj.weight", 0, 4);
  zero_columns(*masked, "encoder.layers.0.self_attn.out_proj.weight", 8, 12);
  // Layer 1 keeps FFN neurons 0..9 and 20..23.
  zero_columns(*masked, "encoder.layers.1.linear2.weight", 10, 20);
  Group heads = named(groups, "encoder.layers.0.self_attn"), neurons = named(groups, "encoder.layers.1.linear1");
  shrink_group(*model, heads, {1, 3});
  std::vector<std::int64_t> kept;
  for (std::int64_t j = 0; j < 24; ++j)
    if (j < 10 || j >= 20) kept.push_back(j);
  shrink_group(*model, neurons, kept);
  EXPECT_EQ(model->parameter("encoder.layers.0.self_attn.q_proj.weight").shape(), (Shape{8, 16}));
  EXPECT_EQ(model->parameter("encoder.layers.0.self_attn.v_proj.bias").shape(), (Shape{8}));
  EXPECT_EQ(model->parameter("encoder.layers.0.self_attn.out_proj.weight").shape(), (Shape{16, 8}));
  EXPECT_EQ(model->parameter("encoder.layers.1.linear1.weight").shape(), (Shape{14, 16}));
  EXPECT_EQ(model->parameter("encoder.layers.1.linear2.weight").shape(), (Shape{16, 14}));
  const auto* attn = dynamic_cast<const nn::MultiheadAttention*>(model->child("encoder.layers.0.self_attn").get());
  ASSERT_NE(attn, nullptr);
  EXPECT_EQ(attn->heads(), 2);
  EXPECT_TRUE(all_close("shrunk vs masked", (*model)(x), (*masked)(x), 1e-5, 1e-5));
  // A head whose Q, K, V rows and biases are zero attends uniformly to zero values: removing it
  // changes nothing even where out_proj still reads it.
  auto zeroed = build(kVit, 5), pruned = build(kVit, 5);
  for (const char* p : {"q_proj", "k_proj", "v_proj"}) {
    const std::string w = std::string("encoder.layers.1.self_attn.") + p;
    std::vector<float> wv = zeroed->parameter(w + ".weight").to_vector<float>(),
                       bv = zeroed->parameter(w + ".bias").to_vector<float>();
    for (std::int64_t r = 8; r < 12; ++r) {  // head 2
      bv[r] = 0;
      for (int c = 0; c < 16; ++c) wv[r * 16 + c] = 0;
    }
    zeroed->set_parameter(w + ".weight", Tensor::from_vector(wv, {16, 16}));
    zeroed->set_parameter(w + ".bias", Tensor::from_vector(bv, {16}));
  }
  pruned->load_state_dict(zeroed->state_dict());
  auto pruned_groups = build_groups(*pruned, nn::input_shape(kVit));
  Group g = named(pruned_groups, "encoder.layers.1.self_attn");
  shrink_group(*pruned, g, {0, 1, 3});
  EXPECT_TRUE(all_close("zeroed head removed", (*pruned)(x), (*zeroed)(x), 1e-5, 1e-5));
}

TEST(PruneTransformer, APrunedModelReloadsWithItsHeadCountsAndNeverLosesItsLastHead) {
  auto model = build(kVit, 3);
  auto groups = build_groups(*model, nn::input_shape(kVit));
  Group g = named(groups, "encoder.layers.1.self_attn");
  shrink_group(*model, g, {2});
  EXPECT_NE(error_of([&] { shrink_group(*model, g, {}); }).find("keeps at least one"), std::string::npos);
  const Tensor x = images(2, 6);
  const Tensor before = (*model)(x);
  const std::string path = ::testing::TempDir() + "vit_pruned.safetensors";
  nn::save_checkpoint(path, *model);
  Generator gen(9);
  auto loaded = nn::load_checkpoint(path, gen).model;
  loaded->eval();
  const auto* attn = dynamic_cast<const nn::MultiheadAttention*>(loaded->child("encoder.layers.1.self_attn").get());
  ASSERT_NE(attn, nullptr);
  EXPECT_EQ(attn->heads(), 1);
  EXPECT_EQ(attn->head_dim(), 4);
  EXPECT_EQ((*loaded)(x).to_vector<float>(), before.to_vector<float>());
  // Allocation keeps a head in every layer however small the target.
  auto small = build(kVit, 3);
  Calibration calib{images(8, 7), Tensor::from_vector(std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7}, {8})};
  PruneOptions o;
  o.method = "magnitude";
  o.target = 0.01;
  prune_model(*small, calib, o, nn::input_shape(kVit));
  for (const Group& after : build_groups(*small, nn::input_shape(kVit))) EXPECT_GE(after.size, 1) << after.name;
}

TEST(PruneTransformer, OptimizerStateIsSlicedWithTheHeads) {
  auto model = build(kVit, 4);
  model->train();
  nn::AdamW opt(model->named_parameters(), 1e-3);
  const Tensor x = images(4, 8), y = Tensor::from_vector(std::vector<std::int64_t>{1, 2, 3, 4}, {4});
  cross_entropy((*model)(x), y).backward();
  opt.step();
  const std::string q = "encoder.layers.0.self_attn.q_proj.weight", o = "encoder.layers.0.self_attn.out_proj.weight";
  const Tensor rows = Tensor::from_vector(std::vector<std::int64_t>{4, 5, 6, 7, 12, 13, 14, 15}, {8});
  std::map<std::string, std::vector<float>> want_q, want_o;
  for (auto& [key, state] : opt.state().at(q)) want_q[key] = index_select(state, 0, rows).to_vector<float>();
  for (auto& [key, state] : opt.state().at(o)) want_o[key] = index_select(state, 1, rows).to_vector<float>();
  auto groups = build_groups(*model, nn::input_shape(kVit));
  Group g = named(groups, "encoder.layers.0.self_attn");
  shrink_group(*model, g, {1, 3}, &opt);
  for (auto& [key, want] : want_q) EXPECT_EQ(opt.state().at(q).at(key).to_vector<float>(), want) << key;
  for (auto& [key, want] : want_o) EXPECT_EQ(opt.state().at(o).at(key).to_vector<float>(), want) << key;
  opt.zero_grad();
  cross_entropy((*model)(x), y).backward();
  EXPECT_NO_THROW(opt.step());
}

TEST(PruneTransformer, EveryMethodPrunesHeadsAndNeuronsOfVitAndBert) {
  const nlohmann::json bert = {{"model", "bert-tiny"}, {"vocab", 32}, {"tokens", 33}, {"classes", 8}, {"dim", 16},
                               {"heads", 4}, {"mlp", 24}, {"dropout", 0.0}};
  datasets::MajorityTaskOptions task;
  task.train = 24, task.test = 1;
  const datasets::Dataset seqs = datasets::majority_task(task);
  for (const std::string method : {"ispasp", "magnitude", "random", "taylor", "head-importance", "pfp", "sap"})
    for (const auto& spec : {kVit, bert}) {
      SCOPED_TRACE(method + " on " + spec["model"].get<std::string>());
      auto model = build(spec, 11);
      const bool tokens = model->takes_token_ids();
      Calibration calib = tokens ? Calibration{seqs.train.images, seqs.train.labels}
                                 : Calibration{images(24, 12), slice(seqs.train.labels, 0, 0, 24)};
      PruneOptions o;
      o.method = method;
      if (method == "sap") {  // SAP decides its own counts: give it sparse FFN rows to find
        o.target_kind = TargetKind::None;
        for (const char* layer : {"encoder.layers.0.linear1", "encoder.layers.1.linear1"}) {
          std::vector<float> w = model->parameter(std::string(layer) + ".weight").to_vector<float>();
          for (std::size_t i = 0; i < w.size() / 2; ++i) w[i] *= 1e-3f;  // rows 0..11 nearly zero
          model->set_parameter(std::string(layer) + ".weight", Tensor::from_vector(w, {24, 16}));
        }
      }
      o.refit = method == "ispasp";
      prune_model(*model, calib, o, nn::input_shape(spec));
      std::int64_t before = 0, after = 0;
      for (const Group& g : build_groups(*model, nn::input_shape(spec))) {
        after += g.size;
        before += g.name.find("self_attn") != std::string::npos ? 4 : 24;
        EXPECT_GE(g.size, 1) << g.name;
      }
      EXPECT_LT(after, before);
      EXPECT_EQ((*model)(slice(calib.inputs, 0, 0, 2)).shape(), (Shape{2, tokens ? 8 : 10}));
    }
}
