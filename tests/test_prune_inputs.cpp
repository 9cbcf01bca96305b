// Input-feature pruning (--prune-inputs): the input group (prune/group.h), the model's input
// selection (nn/input_selection.h), its checkpoint round trip and the refusal of crafted
// indices, counts, and every registered method on lenet-300-100 with the input group.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/safetensors.h"
#include "core/shrink.h"
#include "nn/checkpoint.h"
#include "nn/flatten.h"
#include "nn/flops.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/sequential.h"
#include "prune/allocation.h"
#include "prune/methods.h"
#include "prune/pruner.h"
#include "prune/slice.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::prune;
namespace fs = std::filesystem;
using shrink::testing::error_of;

namespace {

Tensor forward(nn::Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  model.eval();
  return model(x);
}

void expect_close(const Tensor& a, const Tensor& b, double tol) {
  ASSERT_EQ(a.shape(), b.shape());
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  for (std::size_t i = 0; i < va.size(); ++i) ASSERT_NEAR(va[i], vb[i], tol) << "element " << i;
}

std::vector<std::int64_t> every(std::int64_t step, std::int64_t n, std::int64_t offset = 0) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = offset; i < n; i += step) out.push_back(i);
  return out;
}

// Zeroes the columns of `tensor` (a matrix) outside `kept`.
void zero_columns_outside(nn::Module& model, const std::string& tensor, const std::vector<std::int64_t>& kept) {
  Tensor& t = model.parameter(tensor);
  auto v = t.to_vector<float>();
  const std::int64_t rows = t.size(0), cols = t.size(1);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      if (!std::binary_search(kept.begin(), kept.end(), c)) v[static_cast<std::size_t>(r * cols + c)] = 0.0f;
  model.set_parameter(tensor, Tensor::from_vector(v, t.shape()));
}

std::vector<std::int64_t> input_index(const nn::Module& model) {
  return model.buffer("0.input_index").to_vector<std::int64_t>();
}

Tensor labels_mod10(std::int64_t n) {
  std::vector<std::int64_t> y;
  for (std::int64_t i = 0; i < n; ++i) y.push_back(i % 10);
  return Tensor::from_vector(y, {n});
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("shrink-inputs-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace

TEST(InputGroup, BuiltOnlyWhenAskedFirstWithTheFirstLayersColumns) {
  Generator gen(1);
  auto model = nn::build_model("lenet-300-100", gen);
  EXPECT_EQ(build_groups(*model).size(), 2u);
  const auto groups = build_groups(*model, /*inputs=*/true);
  ASSERT_EQ(groups.size(), 3u);
  const Group& in = groups[0];
  EXPECT_TRUE(in.is_input());
  EXPECT_EQ(in.name, kInputGroup);
  EXPECT_EQ(in.size, 784);
  EXPECT_EQ(in.producer, "");
  EXPECT_EQ(in.activation, "0");  // the Flatten: its output is the model input the first layer reads
  EXPECT_EQ(in.consumer, "1");
  EXPECT_EQ(in.members, (std::vector<Member>{{"1.weight", 1}}));
  EXPECT_EQ(groups[1].name, "1");
  EXPECT_FALSE(groups[1].is_input());
}

TEST(InputGroup, RefusedWithoutAnInputSelectingLayer) {
  Generator gen(2);
  auto chain = std::make_shared<nn::Sequential>();
  chain->push_back(std::make_shared<nn::Linear>(6, 4, gen));
  chain->push_back(std::make_shared<nn::Linear>(4, 2, gen));
  const std::string e = error_of([&] { build_groups(*chain, true); });
  EXPECT_NE(e.find("input pruning needs a layer that can select input features"), std::string::npos) << e;
  EXPECT_NE(e.find("'0'"), std::string::npos) << e;
}

// Removing input features whose first-layer columns are zero leaves the outputs on full
// inputs unchanged; a second cut composes with the first.
TEST(InputGroup, PruningZeroColumnsPreservesTheFunctionOnFullInputs) {
  Generator gen(3);
  auto model = nn::build_model("mlp:784-30-10-3", gen);
  const std::vector<std::int64_t> kept = every(3, 784, 1);  // 261 features
  zero_columns_outside(*model, "1.weight", kept);
  const Tensor x = Tensor::randn({5, 1, 28, 28}, gen);
  const Tensor dense = forward(*model, x);

  auto groups = build_groups(*model, true);
  shrink_group(*model, groups[0], kept);
  EXPECT_EQ(groups[0].size, 261);
  EXPECT_EQ(model->parameter("1.weight").shape(), (Shape{30, 261}));
  EXPECT_EQ(input_index(*model), kept);
  expect_close(forward(*model, x), dense, 1e-5);

  // Again, on the pruned model: keep every other kept feature (zeroed first).
  std::vector<std::int64_t> second = every(2, 261), second_features;
  for (auto i : second) second_features.push_back(kept[static_cast<std::size_t>(i)]);
  zero_columns_outside(*model, "1.weight", second);
  const Tensor masked = forward(*model, x);
  auto again = build_groups(*model, true);
  EXPECT_EQ(again[0].size, 261);
  shrink_group(*model, again[0], second);
  EXPECT_EQ(input_index(*model), second_features);
  EXPECT_EQ(dynamic_cast<nn::Flatten&>(*model->child("0")).selected_from(), 784);
  expect_close(forward(*model, x), masked, 1e-5);
}

TEST(InputGroup, ParameterAndFlopCountsReflectTheSmallerFirstLayer) {
  Generator gen(4);
  auto model = nn::build_model("mlp:784-30-10-3", gen);
  auto groups = build_groups(*model, true);
  const std::int64_t k = 100;
  // What allocation predicts (on a shape-only copy) is what shrinking produces.
  const Size predicted = size_after(*model, groups, {{kInputGroup, k}}, {784});
  std::vector<std::int64_t> kept = every(7, 784);  // 112 features, of which the first k stay
  kept.resize(static_cast<std::size_t>(k));
  shrink_group(*model, groups[0], kept);
  const std::int64_t params = k * 30 + 30 + 30 * 10 + 10 + 10 * 3 + 3;
  const std::int64_t flops = 2 * (k * 30 + 30 * 10 + 10 * 3) + 30 + 10 + 3;
  EXPECT_EQ(model->num_parameters(), params);  // the index is a buffer, not a parameter
  EXPECT_EQ(nn::flops_per_sample(*model, {784}), flops);
  EXPECT_EQ(predicted.params, params);
  EXPECT_EQ(predicted.flops, flops);
  // And with the selection already in place, a further cut is priced the same way.
  auto again = build_groups(*model, true);
  const Size next = size_after(*model, again, {{kInputGroup, 40}, {"1", 20}}, {784});
  EXPECT_EQ(next.params, 40 * 20 + 20 + 20 * 10 + 10 + 10 * 3 + 3);
  EXPECT_EQ(next.flops, 2 * (40 * 20 + 20 * 10 + 10 * 3) + 20 + 10 + 3);
}

TEST(InputGroup, CheckpointRoundTripsAndDenseFilesAreUnchanged) {
  TempDir dir;
  Generator gen(5);
  auto model = nn::build_model("lenet-300-100", gen);
  const std::string dense_path = dir.file("dense.safetensors");
  nn::save_checkpoint(dense_path, *model);
  const SafetensorsContents dense = load_safetensors(dense_path);
  EXPECT_EQ(dense.tensors.count("0.input_index"), 0u);
  EXPECT_EQ(dense.metadata.at("model"), R"({"model":"lenet-300-100"})");

  auto groups = build_groups(*model, true);
  shrink_group(*model, groups[0], every(2, 784, 1));
  shrink_group(*model, groups[1], every(3, 300));
  const Tensor x = Tensor::randn({4, 1, 28, 28}, gen);
  const Tensor before = forward(*model, x);
  const std::string path = dir.file("pruned.safetensors");
  nn::save_checkpoint(path, *model);
  const nlohmann::json spec = nlohmann::json::parse(load_safetensors(path).metadata.at("model"));
  EXPECT_EQ(spec.at("inputs"), nlohmann::json::parse(R"({"0": {"features": 784}})"));

  Generator load_gen(9);
  nn::Checkpoint loaded = nn::load_checkpoint(path, load_gen);
  EXPECT_EQ(input_index(*loaded.model), every(2, 784, 1));
  expect_close(forward(*loaded.model, x), before, 0.0);
  EXPECT_EQ(nn::model_spec(*loaded.model), spec);  // saves again as it was
  EXPECT_EQ(nn::layer_widths(*loaded.model), (std::vector<std::int64_t>{392, 100, 100, 10}));

  Generator dense_gen(9);
  nn::Checkpoint reloaded = nn::load_checkpoint(dense_path, dense_gen);
  EXPECT_FALSE(reloaded.model->has_buffer("0.input_index"));
  EXPECT_EQ(nn::model_spec(*reloaded.model), nlohmann::json::parse(R"({"model":"lenet-300-100"})"));
}

// A crafted "0.input_index" is refused on load with an error naming the file and the tensor.
TEST(InputGroup, CraftedIndicesAreRefusedNamingFileAndTensor) {
  TempDir dir;
  Generator gen(6);
  auto model = nn::build_model("mlp:784-16-3", gen);
  auto groups = build_groups(*model, true);
  shrink_group(*model, groups[0], every(1, 4));  // features 0..3
  const std::string good = dir.file("good.safetensors");
  nn::save_checkpoint(good, *model);
  const SafetensorsContents contents = load_safetensors(good);

  struct Case {
    const char* what;
    Tensor index;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"out of range", Tensor::from_vector(std::vector<std::int64_t>{0, 1, 2, 784}, {4}), "outside the input's 784"},
      {"negative", Tensor::from_vector(std::vector<std::int64_t>{-1, 1, 2, 3}, {4}), "outside the input's 784"},
      {"duplicate", Tensor::from_vector(std::vector<std::int64_t>{0, 1, 1, 3}, {4}), "sorted and unique"},
      {"unsorted", Tensor::from_vector(std::vector<std::int64_t>{0, 2, 1, 3}, {4}), "sorted and unique"},
      {"float", Tensor::from_vector(std::vector<float>{0, 1, 2, 3}, {4}), "must be int64"},
      {"two-d", Tensor::from_vector(std::vector<std::int64_t>{0, 1, 2, 3}, {2, 2}), "has shape (2, 2)"},
      {"too long", Tensor::from_vector(std::vector<std::int64_t>{0, 1, 2, 3, 4}, {5}), "the first layer reads 4"},
  };
  for (const Case& c : cases) {
    auto tensors = contents.tensors;
    tensors["0.input_index"] = c.index;
    const std::string path = dir.file(std::string("bad-") + c.what + ".safetensors");
    save_safetensors(path, {tensors.begin(), tensors.end()}, contents.metadata);
    Generator load_gen(0);
    const std::string e = error_of([&] { nn::load_checkpoint(path, load_gen); });
    EXPECT_NE(e.find(path), std::string::npos) << c.what << ": " << e;
    EXPECT_NE(e.find("input_index"), std::string::npos) << c.what << ": " << e;
    EXPECT_NE(e.find(c.expected), std::string::npos) << c.what << ": " << e;
  }
  // The spec and the tensors must agree: an index without its spec entry, and the reverse.
  {
    auto metadata = contents.metadata;
    metadata["model"] = R"({"model":"mlp","spec":"784-16-3"})";
    const std::string path = dir.file("no-entry.safetensors");
    save_safetensors(path, {contents.tensors.begin(), contents.tensors.end()}, metadata);
    Generator load_gen(0);
    const std::string e = error_of([&] { nn::load_checkpoint(path, load_gen); });
    EXPECT_NE(e.find("0.input_index"), std::string::npos) << e;
  }
  {
    auto metadata = contents.metadata;
    metadata["model"] = R"({"model":"mlp","spec":"784-16-3","inputs":{"2":{"features":784}}})";
    const std::string path = dir.file("wrong-layer.safetensors");
    save_safetensors(path, {contents.tensors.begin(), contents.tensors.end()}, metadata);
    Generator load_gen(0);
    const std::string e = error_of([&] { nn::load_checkpoint(path, load_gen); });
    EXPECT_NE(e.find("input selection '2'"), std::string::npos) << e;
  }
}

TEST(InputGroup, KeepInputsHoldsTheInputGroupToItsOwnFraction) {
  Generator gen(7);
  auto model = nn::build_model("lenet-300-100", gen);
  const Calibration calib{Tensor::uniform({32, 784}, 0, 1, gen), labels_mod10(32)};
  PruneOptions o;
  o.method = "magnitude";
  o.target = 0.5;
  o.prune_inputs = true;
  o.rails.input_keep = 0.9;
  const PruneReport r = prune_model(*model, calib, o, {784});
  ASSERT_EQ(r.groups.size(), 3u);
  EXPECT_EQ(r.groups[0].name, kInputGroup);
  EXPECT_EQ(r.groups[0].after, 706);  // round(0.9 * 784)
  EXPECT_EQ(r.groups[1].after, 150);
  EXPECT_EQ(r.groups[2].after, 50);

  PruneOptions without = o;
  without.prune_inputs = false;
  auto fresh = nn::build_model("lenet-300-100", gen);
  EXPECT_NE(error_of([&] { prune_model(*fresh, calib, without, {784}); }).find("--prune-inputs"), std::string::npos);
  PruneOptions sap = o;
  sap.method = "sap";
  sap.target_kind = TargetKind::None;
  EXPECT_NE(error_of([&] { prune_model(*fresh, calib, sap, {784}); }).find("decides its own counts"),
            std::string::npos);
  PruneOptions zero = o;
  zero.rails.input_keep = 1.5;
  EXPECT_NE(error_of([&] { prune_model(*fresh, calib, zero, {784}); }).find("(0, 1]"), std::string::npos);
}

// Magnitude scores an input feature by its column in the first layer (it has no producer).
TEST(InputGroup, MagnitudeScoresTheFirstLayersColumns) {
  Generator gen(8);
  auto model = nn::build_model("mlp:6-4-2", gen);
  const Group in = build_groups(*model, true)[0];
  const Scores s = score_magnitude(*model, in, 1);
  ASSERT_EQ(s.size(), 6u);
  const auto w = model->parameter("1.weight").to_vector<float>();
  for (std::size_t j = 0; j < 6; ++j) {
    double l1 = 0;
    for (std::size_t i = 0; i < 4; ++i) l1 += std::fabs(w[i * 6 + j]);
    EXPECT_NEAR(s[j], l1, 1e-6);
  }
}

// Every registered method prunes lenet-300-100's inputs: the input group shrinks (never to
// zero), the model keeps taking full images and its selection matches its first layer.
TEST(InputGroup, EveryMethodPrunesLenetInputs) {
  for (const Method& m : methods()) {
    SCOPED_TRACE(m.name);
    Generator gen(10);
    auto model = nn::build_model("lenet-300-100", gen);
    const Tensor x = Tensor::uniform({48, 1, 28, 28}, 0, 1, gen);  // full images
    const Tensor labels = labels_mod10(48);
    const Calibration calib{x, labels};
    PruneOptions o;
    o.method = m.name;
    o.prune_inputs = true;
    if (m.accepts(TargetKind::None)) {
      o.target_kind = TargetKind::None;
    } else {
      o.target = m.name == "gfs" ? 0.02 : 0.5;  // GFS costs one scoring pass per kept unit
    }
    const PruneReport r = prune_model(*model, calib, o, {1, 28, 28});
    ASSERT_EQ(r.groups.size(), 3u);
    EXPECT_EQ(r.groups[0].name, kInputGroup);
    EXPECT_EQ(r.groups[0].before, 784);
    EXPECT_GE(r.groups[0].after, 1);
    if (!m.accepts(TargetKind::None)) {
      EXPECT_LT(r.groups[0].after, 784);
    }
    const std::int64_t kept = model->parameter("1.weight").size(1);
    EXPECT_EQ(kept, r.groups[0].after);
    if (kept < 784) {
      const auto index = input_index(*model);
      EXPECT_EQ(static_cast<std::int64_t>(index.size()), kept);
      EXPECT_TRUE(std::is_sorted(index.begin(), index.end()));
    }
    EXPECT_EQ(forward(*model, x).shape(), (Shape{48, 10}));
  }
}

// PFP's budget search includes the input group: at a parameter target most of lenet's
// weights (88% in its first layer) can only go through the inputs.
TEST(InputGroup, PfpBudgetSearchIncludesTheInputs) {
  Generator gen(11);
  auto model = nn::build_model("lenet-300-100", gen);
  const Calibration calib{Tensor::uniform({64, 784}, 0, 1, gen), labels_mod10(64)};
  PruneOptions o;
  o.method = "pfp";
  o.target_kind = TargetKind::Params;
  o.target = 0.1;
  o.prune_inputs = true;
  const std::int64_t dense = model->num_parameters();
  const PruneReport r = prune_model(*model, calib, o, {784});
  EXPECT_LT(r.groups[0].after, 784);
  EXPECT_NEAR(static_cast<double>(model->num_parameters()) / static_cast<double>(dense), 0.1, 0.01);
}

// ---- CNNs: the input group is the first conv's input channels, selected by "input" ----

// Zeroes conv1's weights of the input channels outside `kept`: the model no longer reads them.
void zero_input_channels_outside(nn::Module& model, const std::string& tensor, const std::vector<std::int64_t>& kept) {
  Tensor& t = model.parameter(tensor);
  auto v = t.to_vector<float>();
  const std::int64_t out = t.size(0), in = t.size(1), taps = t.size(2) * t.size(3);
  for (std::int64_t o = 0; o < out; ++o)
    for (std::int64_t c = 0; c < in; ++c)
      if (!std::binary_search(kept.begin(), kept.end(), c))
        std::fill_n(v.begin() + (o * in + c) * taps, taps, 0.0f);
  model.set_parameter(tensor, Tensor::from_vector(v, t.shape()));
}

TEST(InputGroup, CnnFamiliesDropInputChannelsPreservingTheFunctionAndReload) {
  struct Case {
    const char* spec;
    const char* first_conv;
  };
  for (const Case c : {Case{"lenet5:in_channels=5,input_size=32", "conv1"}, Case{"resnet20:in_channels=5", "conv1"},
                       Case{"mobilenetv2:in_channels=5,cifar_stride=true,width=0.5", "features.0.0"}}) {
    SCOPED_TRACE(c.spec);
    Generator gen(11);
    auto model = nn::build_model(c.spec, gen);
    const std::string weight = std::string(c.first_conv) + ".weight";
    const std::vector<std::int64_t> kept = {0, 2, 3};
    zero_input_channels_outside(*model, weight, kept);
    const Shape sample = {5, 32, 32};
    const Tensor x = Tensor::randn({3, 5, 32, 32}, gen);
    const Tensor dense = forward(*model, x);
    const std::int64_t flops_before = nn::flops_per_sample(*model, sample);
    auto groups = build_groups(*model, sample, GroupOptions{true, false});
    ASSERT_EQ(groups[0].name, kInputGroup);
    EXPECT_EQ(groups[0].activation, "input");
    EXPECT_EQ(groups[0].consumer, c.first_conv);
    EXPECT_EQ(groups[0].size, 5);
    shrink_group(*model, groups[0], kept);
    EXPECT_EQ(model->parameter(weight).size(1), 3);
    EXPECT_EQ(model->buffer("input.input_index").to_vector<std::int64_t>(), kept);
    expect_close(forward(*model, x), dense, 1e-4);  // still fed all five channels
    EXPECT_LT(nn::flops_per_sample(*model, sample), flops_before);  // the first conv reads 3 of 5 channels
    TempDir dir;
    nn::save_checkpoint(dir.file("m.safetensors"), *model);
    Generator gen2(1);
    auto loaded = nn::load_checkpoint(dir.file("m.safetensors"), gen2).model;
    expect_close(forward(*loaded, x), dense, 1e-4);
    // A second round composes the selections: keep channel 3 only.
    auto again = build_groups(*loaded, sample, GroupOptions{true, false});
    EXPECT_EQ(again[0].size, 3);
    shrink_group(*loaded, again[0], {2});
    EXPECT_EQ(loaded->buffer("input.input_index").to_vector<std::int64_t>(), (std::vector<std::int64_t>{3}));
    EXPECT_EQ(forward(*loaded, x).shape(), dense.shape());
  }
}

// `m` with the input group: its own counts where it decides them (sap), else `kind` at `target`
// (a method that takes no keep fraction gets a parameter target).
PruneOptions input_pruning(const Method& m, TargetKind kind, double target) {
  PruneOptions o;
  o.method = m.name;
  o.prune_inputs = true;
  o.ispasp_iterations = 2;
  if (m.accepts(TargetKind::None)) {
    o.target_kind = TargetKind::None;
  } else {
    o.target_kind = m.accepts(kind) ? kind : TargetKind::Params;
    o.target = target;
  }
  return o;
}

TEST(InputGroup, EveryMethodPrunesTheInputChannelsOfAResnet) {
  for (const Method& m : methods()) {
    if (m.name == "gfs") continue;  // GFS is for small nets: one scoring pass per kept unit
    SCOPED_TRACE(m.name);
    Generator gen(12);
    auto model = nn::build_model("resnet20:in_channels=4,input_size=16", gen);
    const Tensor x = Tensor::uniform({24, 4, 16, 16}, 0, 1, gen);
    const Calibration calib{x, labels_mod10(24)};
    const PruneReport r = prune_model(*model, calib, input_pruning(m, TargetKind::Keep, 0.5), {4, 16, 16});
    ASSERT_FALSE(r.groups.empty());
    EXPECT_EQ(r.groups[0].name, kInputGroup);
    EXPECT_EQ(r.groups[0].before, 4);
    EXPECT_GE(r.groups[0].after, 1);
    EXPECT_EQ(model->parameter("conv1.weight").size(1), r.groups[0].after);
    EXPECT_EQ(forward(*model, x).shape(), (Shape{24, 10}));
  }
}

// A grey image has one input channel: the input group is one unit, which no method may cut and
// PFP's cost model cannot probe at two (it used to ask for 2 of 1 channels and fail).
TEST(InputGroup, EveryMethodKeepsTheOneChannelOfAGreyImage) {
  for (const Method& m : methods()) {
    if (m.name == "gfs") continue;  // GFS is for small nets: one scoring pass per kept unit
    SCOPED_TRACE(m.name);
    Generator gen(13);
    auto model = nn::build_model("lenet5", gen);
    const Tensor x = Tensor::uniform({24, 1, 28, 28}, 0, 1, gen);
    const Calibration calib{x, labels_mod10(24)};
    const std::int64_t dense = model->num_parameters();
    const PruneReport r = prune_model(*model, calib, input_pruning(m, TargetKind::Params, 0.3), {1, 28, 28});
    ASSERT_FALSE(r.groups.empty());
    EXPECT_EQ(r.groups[0].name, kInputGroup);
    EXPECT_EQ(r.groups[0].before, 1);
    EXPECT_EQ(r.groups[0].after, 1);
    EXPECT_EQ(model->parameter("conv1.weight").size(1), 1);
    if (!m.accepts(TargetKind::None)) {  // sap decides its own counts and may keep every unit
      EXPECT_LT(model->num_parameters(), dense);
    }
    EXPECT_EQ(forward(*model, x).shape(), (Shape{24, 10}));
  }
}

// PFP on a model with a hidden group already cut to one unit: that group stays at 1 and the
// budget search still prices the others exactly.
TEST(InputGroup, PfpPricesAGroupOfOneUnit) {
  for (const char* method : {"pfp", "pfp-sampling"}) {
    SCOPED_TRACE(method);
    Generator gen(14);
    auto model = nn::build_model("mlp:12-1-8-3", gen);
    const Calibration calib{Tensor::uniform({32, 12}, 0, 1, gen), labels_mod10(32)};
    PruneOptions o;
    o.method = method;
    o.target_kind = TargetKind::Params;
    o.target = 0.6;
    o.prune_inputs = true;
    const std::int64_t dense = model->num_parameters();
    const PruneReport r = prune_model(*model, calib, o, {12});
    ASSERT_EQ(r.groups.size(), 3u);
    EXPECT_EQ(r.groups[1].before, 1);
    EXPECT_EQ(r.groups[1].after, 1);
    EXPECT_NEAR(static_cast<double>(model->num_parameters()) / static_cast<double>(dense), 0.6, 0.15);
  }
}
