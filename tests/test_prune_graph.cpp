// prune/ on any graph (prune/trace.h, prune/group.h, prune/slice.h): the function-preserving
// identities on every model family — LeNet-300-100, LeNet-5, ResNet-20, ResNet-18 and
// MobileNetV2 — with block-inner groups and with residual streams.
//   * units whose outgoing weights are zero, removed => the same outputs;
//   * units whose incoming weights are masked, removed with the shift fold => the masked
//     model's outputs (exact for Linear and unpadded consumers, at interior positions for
//     padded ones; prune/slice.h says why);
//   * the counts of the allocation's shape model equal the op-level counter's after the cut;
//   * save -> load -> the same outputs; optimizer state is sliced; depthwise stays depthwise.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/shrink.h"
#include "nn/checkpoint.h"
#include "nn/conv.h"
#include "nn/flops.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/sequential.h"
#include "prune/allocation.h"
#include "prune/group.h"
#include "prune/methods.h"
#include "prune/pruner.h"
#include "prune/sap.h"
#include "prune/slice.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::prune;
namespace fs = std::filesystem;
using shrink::testing::error_of;

namespace {

struct Family {
  const char* label;
  const char* spec;
  Shape sample;
};

const Family kFamilies[] = {
    {"lenet300", "lenet-300-100", {1, 28, 28}},
    {"lenet5", "lenet5", {1, 28, 28}},
    {"resnet20", "resnet20:in_channels=1", {1, 32, 32}},
    {"resnet18", "resnet18:small_input=true,in_channels=1,input_size=32", {1, 32, 32}},
    {"mobilenetv2", "mobilenetv2:cifar_stride=true,width=0.5,in_channels=1,input_size=32", {1, 32, 32}},
};

std::shared_ptr<nn::Module> build(const Family& f, std::uint64_t seed = 3) {
  Generator gen(seed);
  auto model = nn::build_model(f.spec, gen);
  // Non-trivial BatchNorm statistics and affine terms, so that shifts are not zero.
  Generator noise(seed + 100);
  for (auto& [name, t] : model->named_buffers()) {
    if (name.size() > 12 && name.substr(name.size() - 12) == "running_mean")
      model->set_buffer(name, Tensor::uniform(t.shape(), -0.3, 0.3, noise));
    if (name.size() > 11 && name.substr(name.size() - 11) == "running_var")
      model->set_buffer(name, Tensor::uniform(t.shape(), 0.5, 1.5, noise));
  }
  for (auto& [name, p] : model->named_parameters())
    if (p.dim() == 1) model->set_parameter(name, Tensor::uniform(p.shape(), -0.2, 0.4, noise));
  model->eval();
  return model;
}

Tensor input(const Family& f, std::int64_t n = 2, std::uint64_t seed = 7) {
  Generator gen(seed);
  Shape shape{n};
  shape.insert(shape.end(), f.sample.begin(), f.sample.end());
  return Tensor::randn(shape, gen);
}

Tensor forward(nn::Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  model.eval();
  return model(x);
}

void expect_close(const Tensor& a, const Tensor& b, double tol, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  double scale = 1e-6;
  for (float v : vb) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  for (std::size_t i = 0; i < va.size(); ++i)
    ASSERT_NEAR(va[i], vb[i], tol * scale) << what << ": element " << i;
}

// Every third unit goes (at least one stays).
std::vector<std::int64_t> kept_units(std::int64_t size) {
  std::vector<std::int64_t> kept;
  for (std::int64_t i = 0; i < size; ++i)
    if (i % 3 != 1) kept.push_back(i);
  return kept;
}

// Zeroes the slices of `tensor` along `axis` that belong to units outside `kept`.
void zero_units(nn::Module& model, const Member& m, const std::vector<std::int64_t>& kept) {
  Tensor t = model.parameter(m.tensor);
  auto v = t.to_vector<float>();
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < m.axis; ++d) outer *= t.size(d);
  for (std::int64_t d = m.axis + 1; d < t.dim(); ++d) inner *= t.size(d);
  const std::int64_t along = t.size(m.axis);
  const std::set<std::int64_t> keep(kept.begin(), kept.end());
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t a = 0; a < along; ++a)
      if (!keep.count(a / m.block))
        std::fill_n(v.begin() + (o * along + a) * inner, inner, 0.0f);
  model.set_parameter(m.tensor, Tensor::from_vector(v, t.shape()));
}

std::string owner(const std::string& tensor) { return tensor.substr(0, tensor.rfind('.')); }

bool is_consumer_member(const Group& g, const Member& m) {
  for (const ConsumerRead& r : g.reads)
    if (owner(m.tensor) == r.consumer && m.axis == 1) return true;
  return false;
}

class GraphPruning : public ::testing::TestWithParam<Family> {};

}  // namespace

TEST_P(GraphPruning, GroupsAreTracedWithConsistentMembersAndTheClassifierStays) {
  const Family& f = GetParam();
  auto model = build(f);
  for (bool residual : {false, true}) {
    SCOPED_TRACE(residual ? "with residual streams" : "block-inner");
    const auto groups = build_groups(*model, f.sample, GroupOptions{false, residual});
    ASSERT_FALSE(groups.empty());
    std::string classifier;
    for (const auto& [path, m] : model->named_modules())
      if (m->named_children().empty() && m->channels().kind == nn::Module::ChannelSpec::Kind::Transform) classifier = path;
    for (const Group& g : groups) {
      EXPECT_FALSE(g.producers.empty()) << g.name;
      EXPECT_FALSE(g.reads.empty()) << g.name;
      EXPECT_EQ(g.residual, !g.is_chain()) << g.name;
      for (const Member& m : g.members) {
        const Tensor& t = model->has_parameter(m.tensor) ? model->parameter(m.tensor) : model->buffer(m.tensor);
        EXPECT_EQ(t.size(m.axis), g.size * m.block) << g.name << " " << m.tensor;
        EXPECT_FALSE(owner(m.tensor) == classifier && m.axis == 0) << g.name << " holds the classifier's outputs";
      }
      EXPECT_TRUE(residual || !g.residual) << g.name << " is a residual stream";
    }
  }
  // A ResNet's stages and MobileNetV2's matching-width blocks are residual streams.
  const bool has_streams = std::string(f.label).rfind("resnet", 0) == 0 || std::string(f.label) == "mobilenetv2";
  const auto all = build_groups(*model, f.sample, GroupOptions{false, true});
  const auto inner = build_groups(*model, f.sample);
  EXPECT_EQ(all.size() > inner.size(), has_streams);
  for (const Group& g : all) EXPECT_TRUE(!g.residual || g.producers.size() >= 2) << g.name;
}

TEST_P(GraphPruning, RemovingUnitsWhoseOutgoingWeightsAreZeroKeepsTheOutputs) {
  const Family& f = GetParam();
  for (bool residual : {false, true}) {
    SCOPED_TRACE(residual ? "with residual streams" : "block-inner");
    auto model = build(f);
    auto groups = build_groups(*model, f.sample, GroupOptions{false, residual});
    for (const Group& g : groups)
      for (const Member& m : g.members)
        if (is_consumer_member(g, m)) zero_units(*model, m, kept_units(g.size));
    const Tensor x = input(f);
    const Tensor before = forward(*model, x);
    const std::int64_t params = model->num_parameters();
    for (Group& g : groups) shrink_group(*model, g, kept_units(g.size));
    EXPECT_LT(model->num_parameters(), params);
    expect_close(forward(*model, x), before, 1e-4, "pruned vs zeroed");
  }
}

TEST_P(GraphPruning, ShrunkEqualsWeightMaskedWithTheShiftFolded) {
  const Family& f = GetParam();
  const bool exact = std::string(f.label).rfind("lenet", 0) == 0;  // no padded consumer on the way
  auto probe = build(f);
  const auto groups = build_groups(*probe, f.sample);
  // Up to four groups, each on its own: compare its consumer's outputs.
  for (std::size_t i = 0; i < groups.size() && i < 4; ++i) {
    const Group& g = groups[i];
    SCOPED_TRACE(g.name);
    ASSERT_TRUE(g.is_chain());
    const std::vector<std::int64_t> kept = kept_units(g.size);
    auto capture = [&](nn::Module& model, Tensor& out) {
      // After the consumer's BatchNorm when the fold went into its running mean.
      const std::string& at = g.reads.front().norm_after.empty() ? g.consumer : g.reads.front().norm_after;
      return model.child(at)->register_forward_hook(
          [&out](nn::Module&, const Tensor&, Tensor& y) { out = y.detach().clone(); });
    };
    const Tensor x = input(f);
    auto masked = build(f);
    zero_units(*masked, Member{g.producer + ".weight", 0, 1}, kept);
    Tensor want, got, unfolded;
    {
      auto hook = capture(*masked, want);
      forward(*masked, x);
    }
    for (bool fold : {true, false}) {
      auto cut = build(f);
      auto cut_groups = build_groups(*cut, f.sample);
      shrink_group(*cut, cut_groups[i], kept, nullptr, fold);
      auto hook = capture(*cut, fold ? got : unfolded);
      forward(*cut, x);
    }
    // Interior positions only for padded consumers (no bias can mimic the zero padding).
    auto shifted = [&](const Tensor& t) {
      if (exact || t.dim() != 4) return t;
      const std::int64_t m = 2;
      std::vector<std::int64_t> rows, cols;
      for (std::int64_t r = m; r < t.size(2) - m; ++r) rows.push_back(r);
      for (std::int64_t c = m; c < t.size(3) - m; ++c) cols.push_back(c);
      return index_select(index_select(t, 2, Tensor::from_vector(rows, {static_cast<std::int64_t>(rows.size())})), 3,
                          Tensor::from_vector(cols, {static_cast<std::int64_t>(cols.size())}));
    };
    expect_close(shifted(got), shifted(want), 1e-4, "shrunk (folded) vs masked");
    // Without the fold the cut model differs from the masked one: the test can fail.
    const auto a = shifted(unfolded).to_vector<float>(), b = shifted(want).to_vector<float>();
    double worst = 0;
    for (std::size_t k = 0; k < a.size(); ++k) worst = std::max(worst, static_cast<double>(std::fabs(a[k] - b[k])));
    EXPECT_GT(worst, 1e-3) << "the shift fold had nothing to do";
  }
}

TEST_P(GraphPruning, TheShapeModelsCountsEqualTheOpCounterAfterTheCut) {
  const Family& f = GetParam();
  auto model = build(f);
  auto groups = build_groups(*model, f.sample, GroupOptions{false, true});
  KeepCounts keep;
  for (const Group& g : groups) keep[g.name] = (g.size + 1) / 2;
  const Size predicted = size_after(*model, groups, keep, f.sample);
  for (Group& g : groups) {
    std::vector<std::int64_t> kept(static_cast<std::size_t>(keep.at(g.name)));
    for (std::size_t k = 0; k < kept.size(); ++k) kept[k] = static_cast<std::int64_t>(2 * k);
    shrink_group(*model, g, kept);
  }
  EXPECT_EQ(predicted.params, model->num_parameters());
  EXPECT_EQ(predicted.flops, nn::flops_per_sample(*model, f.sample));
  EXPECT_EQ(forward(*model, input(f)).shape(), (Shape{2, 10}));  // every add still lines up
}

TEST_P(GraphPruning, SaveLoadGivesTheSameOutputsAndTheSameGroups) {
  const Family& f = GetParam();
  auto model = build(f);
  auto groups = build_groups(*model, f.sample, GroupOptions{false, true});
  for (Group& g : groups) shrink_group(*model, g, kept_units(g.size), nullptr, true);
  const fs::path dir = fs::temp_directory_path() / ("shrink_graph_" + std::to_string(::getpid()) + f.label);
  fs::create_directories(dir);
  const std::string path = (dir / "pruned.safetensors").string();
  nn::save_checkpoint(path, *model);
  Generator other(99);
  nn::Checkpoint ckpt = nn::load_checkpoint(path, other);
  fs::remove_all(dir);
  const Tensor x = input(f);
  EXPECT_EQ(forward(*ckpt.model, x).to_vector<float>(), forward(*model, x).to_vector<float>());
  const auto again = build_groups(*ckpt.model, f.sample, GroupOptions{false, true});
  ASSERT_EQ(again.size(), groups.size());
  for (std::size_t i = 0; i < groups.size(); ++i) EXPECT_EQ(again[i].size, groups[i].size) << groups[i].name;
}

TEST_P(GraphPruning, OptimizerStateIsSlicedAndTrainingGoesOn) {
  const Family& f = GetParam();
  auto model = build(f);
  nn::SGD opt(model->named_parameters(), 0.01, 0.9);
  auto step = [&] {
    model->train();
    opt.zero_grad();
    const Tensor y = Tensor::from_vector(std::vector<std::int64_t>{1, 2}, {2});
    cross_entropy((*model)(input(f)), y).backward();
    opt.step();
  };
  step();
  auto groups = build_groups(*model, f.sample, GroupOptions{false, true});
  for (Group& g : groups) shrink_group(*model, g, kept_units(g.size), &opt, true);
  for (const auto& [name, p] : model->named_parameters()) {
    EXPECT_EQ(opt.state().at(name).at("momentum_buffer").shape(), p.shape()) << name;
  }
  step();
  for (const auto& [name, p] : model->named_parameters()) EXPECT_TRUE(p.grad().defined()) << name;
}

INSTANTIATE_TEST_SUITE_P(Families, GraphPruning, ::testing::ValuesIn(kFamilies),
                         [](const ::testing::TestParamInfo<Family>& info) { return std::string(info.param.label); });

TEST(GraphPruning, DepthwiseConvsStayDepthwise) {
  const Family& f = kFamilies[4];
  auto model = build(f);
  std::set<std::string> depthwise;
  for (const auto& [path, m] : model->named_modules())
    if (const auto* conv = dynamic_cast<const nn::Conv2d*>(m); conv && conv->is_depthwise()) depthwise.insert(path);
  ASSERT_FALSE(depthwise.empty());
  auto groups = build_groups(*model, f.sample, GroupOptions{false, true});
  for (Group& g : groups) shrink_group(*model, g, kept_units(g.size));
  for (const std::string& path : depthwise) {
    const auto* conv = dynamic_cast<const nn::Conv2d*>(model->child(path).get());
    ASSERT_NE(conv, nullptr);
    EXPECT_TRUE(conv->is_depthwise()) << path;
    EXPECT_EQ(conv->groups(), conv->out_channels()) << path;
    EXPECT_EQ(conv->in_channels(), conv->out_channels()) << path;
    EXPECT_EQ(conv->weight().size(1), 1) << path;
  }
  EXPECT_EQ(forward(*model, input(f)).shape(), (Shape{2, 10}));
}

namespace {

// A layer that declares nothing about its channels.
class Undeclared : public nn::Module {
 public:
  std::string type_name() const override { return "Undeclared"; }

 protected:
  Tensor forward(const Tensor& x) override { return x; }
};

// A composite whose forward permutes between its layers: channels cannot be followed.
class Permuting : public nn::Module {
 public:
  explicit Permuting(Generator& gen) {
    register_module("a", std::make_shared<nn::Linear>(6, 6, gen));
    register_module("b", std::make_shared<nn::Linear>(6, 4, gen));
  }
  std::string type_name() const override { return "Permuting"; }

 protected:
  Tensor forward(const Tensor& x) override {
    const Tensor h = (*child("a"))(x);
    return (*child("b"))(permute(permute(h, {1, 0}), {1, 0}));
  }
};

}  // namespace

TEST(GraphPruning, UntraceableModelsAndEmptiedGroupsAreClearErrors) {
  Generator gen(1);
  auto chain = std::make_shared<nn::Sequential>();
  chain->push_back(std::make_shared<nn::Linear>(5, 8, gen));
  chain->push_back(std::make_shared<Undeclared>());
  chain->push_back(std::make_shared<nn::Linear>(8, 3, gen));
  const std::string opaque = error_of([&] { build_groups(*chain, Shape{5}); });
  EXPECT_NE(opaque.find("'1' (Undeclared)"), std::string::npos) << opaque;
  EXPECT_NE(opaque.find("'0'"), std::string::npos) << opaque;

  auto model = build(kFamilies[2]);
  auto groups = build_groups(*model, kFamilies[2].sample);
  const std::string empty = error_of([&] { shrink_group(*model, groups[0], {}); });
  EXPECT_NE(empty.find(groups[0].name), std::string::npos) << empty;
  EXPECT_NE(empty.find("keeps at least one"), std::string::npos) << empty;

  Permuting permuting(gen);
  const std::string op = error_of([&] { build_groups(permuting, Shape{6}); });
  EXPECT_NE(op.find("'permute'"), std::string::npos) << op;
  EXPECT_NE(op.find("'b' (Linear)"), std::string::npos) << op;
}

namespace {

Calibration random_calibration(const Family& f, std::int64_t n, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) labels[static_cast<std::size_t>(i)] = i % 10;
  return {input(f, n, seed), Tensor::from_vector(labels, {n})};
}

}  // namespace

// Every registered method on LeNet-5, ResNet-20 and MobileNetV2: it either prunes (the model
// shrinks and still runs) or refuses with an error that names what it cannot handle; never
// a crash, never a silently skipped layer.
TEST(GraphPruning, EveryMethodPrunesOrRefusesByName) {
  for (const Family* f : {&kFamilies[1], &kFamilies[2], &kFamilies[4]}) {
    for (const Method& method : methods()) {
      SCOPED_TRACE(std::string(f->label) + " " + method.name);
      auto model = build(*f);
      PruneOptions o;
      o.method = method.name;
      o.target_kind = method.accepts(TargetKind::Params) ? TargetKind::Params : TargetKind::None;
      o.target = 0.7;
      o.ispasp_iterations = 3;
      const std::int64_t before = model->num_parameters();
      const Calibration calib = random_calibration(*f, 24, 5);
      std::string error;
      try {
        prune_model(*model, calib, o, f->sample);
      } catch (const Error& e) {
        error = e.what();
      }
      std::printf("%-12s %-14s %s\n", f->label, method.name.c_str(),
                  error.empty() ? ("params " + std::to_string(before) + " -> " + std::to_string(model->num_parameters())).c_str()
                                : error.c_str());
      if (error.empty()) {
        // SAP decides its own counts (none, on these random weights' even norms).
        if (method.name != "sap") {
          EXPECT_LT(model->num_parameters(), before);
        }
        EXPECT_EQ(forward(*model, input(*f)).shape(), (Shape{2, 10}));
      } else {
        EXPECT_NE(error.find("'"), std::string::npos) << "the error names nothing: " << error;
      }
    }
  }
}

// The consumer refit on conv consumers (unfolded patches) and on a Linear reading a flattened
// map: every refit lowers its consumer's calibration error against the dense output.
TEST(GraphPruning, TheRefitSolvesConvConsumersAndLowersTheirError) {
  for (const Family* f : {&kFamilies[1], &kFamilies[2], &kFamilies[4]}) {
    SCOPED_TRACE(f->label);
    auto model = build(*f);
    PruneOptions o;
    o.method = "magnitude";
    o.target_kind = TargetKind::Keep;
    o.target = 0.5;
    o.refit = true;
    const PruneReport report = prune_model(*model, random_calibration(*f, 48, 9), o, f->sample);
    int refits = 0;
    for (const GroupChange& g : report.groups) {
      if (!g.refit) continue;
      ++refits;
      EXPECT_LT(g.refit_error_after, g.refit_error_before) << g.name;
    }
    EXPECT_EQ(refits, static_cast<int>(report.groups.size()));
    EXPECT_EQ(forward(*model, input(*f)).shape(), (Shape{2, 10}));
  }
}

TEST(GraphPruning, GroupsAreChosenByNameAndAnUnknownNameListsTheKnownOnes) {
  const Family& f = kFamilies[2];
  auto model = build(f);
  const auto groups = build_groups(*model, f.sample);
  const auto two = select_groups(groups, {groups[3].name, groups[1].name});
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].name, groups[1].name);  // input to output
  EXPECT_EQ(two[1].name, groups[3].name);
  const std::string error = error_of([&] { select_groups(groups, {"layer9.conv1"}); });
  EXPECT_NE(error.find("'layer9.conv1'"), std::string::npos) << error;
  EXPECT_NE(error.find(groups[0].name), std::string::npos) << error;

  PruneOptions o;
  o.method = "magnitude";
  o.target_kind = TargetKind::Keep;
  o.target = 0.5;
  o.only_groups = {groups[2].name};
  const PruneReport report = prune_model(*model, random_calibration(f, 8, 1), o, f.sample);
  ASSERT_EQ(report.groups.size(), 1u);
  EXPECT_EQ(report.groups[0].after, groups[2].size / 2);
  EXPECT_EQ(build_groups(*model, f.sample)[0].size, groups[0].size);  // the others untouched
}

// A layer with a 2-D weight and no sparse form (tests only): unstructured pruning must refuse it.
class Bilinear : public nn::Module {
 public:
  Bilinear() { register_parameter("table", Tensor::zeros({3, 4})); }
  std::string type_name() const override { return "Bilinear"; }
};

TEST(GraphPruning, UnstructuredSapStoresConvsSparseAndRefusesALayerItCannotStore) {
  auto model = build(kFamilies[1]);
  EXPECT_EQ(error_of([&] { sap_unstructured_round(*model, {}, Scope::Layer); }), "");
  for (const auto& [name, m] : model->named_modules())
    EXPECT_FALSE(dynamic_cast<const nn::Conv2d*>(m) || dynamic_cast<const nn::Linear*>(m))
        << name << " was left dense";
  nn::Sequential odd;
  Generator gen(1);
  odd.push_back(std::make_shared<nn::Linear>(4, 4, true, gen));
  odd.push_back(std::make_shared<Bilinear>());
  const std::string error = error_of([&] { sap_unstructured_round(odd, {}, Scope::Layer); });
  EXPECT_NE(error.find("layer '1' (Bilinear) has a 2-D 'table' and no sparse form"), std::string::npos) << error;
}

// With residual streams, every structured method prunes them, with and without the refit:
// magnitude and random by the stream's weights, taylor by the gradient at every read, PFP by
// each unit's largest sensitivity over the layers reading it, i-SpaSP by the residuals of
// all of them summed; the refit solves every consumer.
TEST(GraphPruning, ResidualStreamsArePrunedByEveryMethod) {
  const Family& f = kFamilies[2];
  const double dense = static_cast<double>(build(f)->num_parameters());
  const auto groups = build_groups(*build(f), f.sample, GroupOptions{false, true});  // 3 streams among them
  const std::pair<const char*, bool> runs[] = {{"magnitude", false}, {"random", true},       {"taylor", false},
                                               {"ispasp", false},    {"ispasp", true},       {"pfp", true},
                                               {"pfp-sampling", false}};  // (method, refit)
  for (const auto& [method, refit] : runs) {
    SCOPED_TRACE(std::string(method) + (refit ? " with refit" : ""));
    auto model = build(f);
    PruneOptions o;
    o.method = method;
    o.target_kind = std::string(method).starts_with("pfp") ? TargetKind::Params : TargetKind::Keep;
    o.target = 0.6;
    o.prune_residual = true;
    o.refit = refit;
    o.ispasp_iterations = 2;
    const PruneReport r = prune_model(*model, random_calibration(f, 16, 3), o, f.sample);
    EXPECT_EQ(r.groups.size(), groups.size()) << "a group was skipped";
    if (!std::string(method).starts_with("pfp")) {  // PFP's budget search may leave one stream whole
      EXPECT_LT(model->parameter("conv1.weight").size(0), 16) << "the first stage's stream was not cut";
    }
    EXPECT_LT(static_cast<double>(model->num_parameters()), 0.7 * dense);
    EXPECT_EQ(forward(*model, input(f)).shape(), (Shape{2, 10}));
  }
}

namespace {

// A user's own model: layers called from a hand-written forward, with a functional ReLU, a
// functional flatten (reshape) and an add of two branches between them.
class Handwritten : public nn::Module {
 public:
  explicit Handwritten(Generator& gen) {
    register_module("conv", std::make_shared<nn::Conv2d>(1, 6, nn::Conv2dGeometry{3, 3, 1, 1, 1, 1}, true, gen));
    register_module("left", std::make_shared<nn::Conv2d>(6, 4, nn::Conv2dGeometry{1, 1, 1, 0, 1, 1}, true, gen));
    register_module("right", std::make_shared<nn::Conv2d>(6, 4, nn::Conv2dGeometry{3, 3, 1, 1, 1, 1}, true, gen));
    register_module("fc", std::make_shared<nn::Linear>(4 * 5 * 5, 3, gen));
  }
  std::string type_name() const override { return "Handwritten"; }

 protected:
  Tensor forward(const Tensor& x) override {
    const Tensor h = relu((*child("conv"))(x));
    const Tensor left = (*child("left"))(h);  // one statement each: call order is the groups' order
    const Tensor right = (*child("right"))(h);
    const Tensor sum = left + right;
    return (*child("fc"))(reshape(relu(sum), {x.size(0), -1}));
  }
};

}  // namespace

TEST(GraphPruning, AHandwrittenForwardIsTracedThroughFunctionalOps) {
  Generator gen(4);
  Handwritten model(gen);
  const Shape sample{1, 5, 5};
  const auto groups = build_groups(model, sample, GroupOptions{false, true});
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].name, "conv");  // read by both branches
  EXPECT_EQ(groups[0].reads.size(), 2u);
  EXPECT_FALSE(groups[0].residual);
  EXPECT_EQ(groups[1].name, "left");  // the branches' sum: two producers, read by fc in blocks of 25
  EXPECT_TRUE(groups[1].residual);
  EXPECT_EQ(groups[1].producers, (std::vector<std::string>{"left", "right"}));
  ASSERT_EQ(groups[1].reads.size(), 1u);
  EXPECT_EQ(groups[1].reads[0].block, 25);
  // Zero the outgoing weights of some units, cut them: the same outputs.
  auto cut = groups;
  const Tensor x = Tensor::randn({3, 1, 5, 5}, gen);
  for (const Group& g : cut)
    for (const Member& m : g.members)
      if (is_consumer_member(g, m)) zero_units(model, m, {0, 2});
  const Tensor before = forward(model, x);
  for (Group& g : cut) shrink_group(model, g, {0, 2});
  expect_close(forward(model, x), before, 1e-5, "handwritten");
  EXPECT_EQ(model.parameter("fc.weight").shape(), (Shape{3, 50}));
}
