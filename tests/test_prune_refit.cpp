// prune/refit: the consumer refit (beyond the seed papers). It restores the dense output
// exactly when the kept units span the dropped ones (duplicated units), leaves the weights
// where they were under a huge ridge, lowers the calibration reconstruction error for every
// cut group of score, select and whole-model methods, resets the optimizer's state of what
// it rewrote, and changes nothing when it is off. shrink-prune's flags are checked too.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/ops.h"
#include "core/random.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "prune/pruner.h"
#include "prune/refit.h"
#include "prune/slice.h"
#include "tests/test_helpers.h"
#include "tests/tool_fixture.h"

namespace {

using namespace shrink;
using namespace shrink::prune;

Tensor forward(nn::Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  model.eval();
  return model(x);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::abs(double(va[i]) - vb[i]));
  return worst;
}

Calibration random_calib(std::int64_t n, std::int64_t features, std::int64_t classes, Generator& gen) {
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (auto& l : labels) l = static_cast<std::int64_t>(gen.next_below(static_cast<std::uint64_t>(classes)));
  return {Tensor::randn({n, features}, gen), Tensor::from_vector(labels, {n})};
}

// mlp:8-6-3 whose hidden units 3, 4, 5 duplicate units 0, 1, 2 (same incoming row and bias).
std::shared_ptr<nn::Module> duplicated_units_model() {
  Generator gen(5);
  auto model = nn::build_model("mlp:8-6-3", gen);
  std::vector<float> w = model->parameter("1.weight").to_vector<float>(), b = model->parameter("1.bias").to_vector<float>();
  for (int j = 3; j < 6; ++j) {
    for (int c = 0; c < 8; ++c) w[j * 8 + c] = w[(j - 3) * 8 + c];
    b[j] = b[j - 3];
  }
  model->set_parameter("1.weight", Tensor::from_vector(w, {6, 8}));
  model->set_parameter("1.bias", Tensor::from_vector(b, {6}));
  return model;
}

TEST(Refit, KeptUnitsSpanningTheDroppedOnesRestoreTheDenseOutput) {
  auto model = duplicated_units_model();
  Generator gen(6);
  const Calibration calib = random_calib(64, 8, 3, gen);
  const Tensor dense = forward(*model, calib.inputs);
  std::vector<Group> groups = build_groups(*model);
  ASSERT_EQ(groups.size(), 1u);
  const DenseTargets targets = capture_dense_targets(*model, groups, calib);
  shrink_group(*model, groups[0], {0, 1, 2});
  const double cut_error = max_abs_diff(forward(*model, calib.inputs), dense);
  ASSERT_GT(cut_error, 1e-2) << "dropping the duplicates must change the output";
  const RefitResult r = refit_consumer(*model, groups[0], groups, targets, calib, 1e-9);
  EXPECT_LT(max_abs_diff(forward(*model, calib.inputs), dense), 1e-4) << "cut error was " << cut_error;
  EXPECT_LT(r.error_after, 1e-8);
  // On fresh inputs too: the refit found the consumer that sums the duplicates' weights.
  const Tensor fresh = Tensor::randn({32, 8}, gen);
  auto reference = duplicated_units_model();
  EXPECT_LT(max_abs_diff(forward(*model, fresh), forward(*reference, fresh)), 1e-4);
}

TEST(Refit, AHugeRidgeLeavesTheWeightsWhereTheyWere) {
  Generator gen(7);
  auto model = nn::build_model("mlp:10-12-4", gen);
  const Calibration calib = random_calib(48, 10, 4, gen);
  std::vector<Group> groups = build_groups(*model);
  const DenseTargets targets = capture_dense_targets(*model, groups, calib);
  shrink_group(*model, groups[0], {0, 2, 3, 7, 11});
  const Tensor w = model->parameter("3.weight").clone(), b = model->parameter("3.bias").clone();
  refit_consumer(*model, groups[0], groups, targets, calib, 1e12);
  EXPECT_LT(max_abs_diff(model->parameter("3.weight"), w), 1e-6);
  EXPECT_LT(max_abs_diff(model->parameter("3.bias"), b), 1e-6);
  refit_consumer(*model, groups[0], groups, targets, calib, 1e-3);
  EXPECT_GT(max_abs_diff(model->parameter("3.weight"), w), 1e-3) << "a moderate ridge moves the weights";
}

TEST(Refit, TooFewSamplesAreRegularisedTowardTheCurrentWeights) {
  // 4 samples, 40 kept units: the plain least-squares fit is underdetermined; the default
  // ridge keeps the change bounded (the ridge is relative to the non-zero eigenvalues).
  Generator gen(8);
  auto model = nn::build_model("mlp:10-80-4", gen);
  const Calibration calib = random_calib(4, 10, 4, gen);
  std::vector<Group> groups = build_groups(*model);
  const DenseTargets targets = capture_dense_targets(*model, groups, calib);
  std::vector<std::int64_t> kept;
  for (std::int64_t j = 0; j < 80; j += 2) kept.push_back(j);
  shrink_group(*model, groups[0], kept);
  const Tensor w = model->parameter("3.weight").clone();
  const RefitResult r = refit_consumer(*model, groups[0], groups, targets, calib, PruneOptions{}.refit_ridge);
  EXPECT_LT(r.error_after, r.error_before);
  EXPECT_LT(max_abs_diff(model->parameter("3.weight"), w), 1.0);
}

// The refit's change against the primal normal equations solved here in float64, for a
// batch smaller than the width (the refit then solves the (N, N) dual system) and a larger one.
TEST(Refit, MatchesThePrimalNormalEquations) {
  for (std::int64_t samples : {24, 200}) {
    Generator gen(14);
    auto model = nn::build_model("mlp:10-80-4", gen);
    const Calibration calib = random_calib(samples, 10, 4, gen);
    std::vector<Group> groups = build_groups(*model);
    const DenseTargets targets = capture_dense_targets(*model, groups, calib);
    std::vector<std::int64_t> kept;
    for (std::int64_t j = 0; j < 80; j += 2) kept.push_back(j);
    shrink_group(*model, groups[0], kept);
    const Tensor w0 = concat({model->parameter("3.weight"), reshape(model->parameter("3.bias"), {4, 1})}, 1)
                          .detach().to(DType::Float64);
    const double ridge = 0.05;
    const RefitResult r = refit_consumer(*model, groups[0], groups, targets, calib, ridge);
    // A = [H, 1] on the cut network, Y the dense output; (A^T A + lambda I) W^T = A^T Y + lambda W0^T.
    NoGradGuard no_grad;
    const Tensor h = (*model->child("2"))((*model->child("1"))(calib.inputs));  // ReLU(Linear(x)), cut
    const Tensor a = concat({h, Tensor::ones({samples, 1})}, 1).to(DType::Float64);
    const Tensor y = targets.outputs.at(groups[0].consumer).to(DType::Float64);
    std::vector<double> eye(41 * 41, 0.0);
    for (int i = 0; i < 41; ++i) eye[static_cast<std::size_t>(i * 41 + i)] = r.lambda;
    const Tensor at = transpose(a, 0, 1);
    const Tensor w = transpose(cholesky_solve(matmul(at, a) + Tensor::from_vector(eye, {41, 41}),
                                              matmul(at, y) + transpose(w0, 0, 1) * r.lambda), 0, 1);
    const Tensor got = concat({model->parameter("3.weight"), reshape(model->parameter("3.bias"), {4, 1})}, 1).detach();
    EXPECT_LT(max_abs_diff(got, w.to(DType::Float32)), 2e-4) << samples << " samples";
    EXPECT_GT(max_abs_diff(got, w0.to(DType::Float32)), 1e-2) << "the refit moved the weights";
  }
}

// A residual stream is read by several layers: the refit solves each of them against its own
// dense output, in call order. Every consumer moves, the error falls, and each consumer's
// weights equal those of a refit of that consumer alone on an identically cut copy that holds
// the earlier consumers' refit weights (a stage's stream sums the blocks before it).
TEST(Refit, SolvesEveryConsumerOfAResidualStream) {
  const Shape sample{1, 16, 16};
  const auto build = [] {
    Generator gen(21);
    return nn::build_model("resnet20:in_channels=1,input_size=16", gen);
  };
  Generator data(22);
  const Calibration calib{Tensor::uniform({12, 1, 16, 16}, 0, 1, data), Tensor::zeros({12}, DType::Int64)};
  const auto stream_of = [&](nn::Module& m) {
    for (const Group& g : build_groups(m, sample, GroupOptions{false, true}))
      if (g.reads.size() >= 2) return g;
    ADD_FAILURE() << "no residual stream";
    return Group{};
  };
  const std::vector<std::int64_t> kept{0, 2, 3, 5, 7, 8, 11, 13, 14};

  auto model = build();
  std::vector<Group> groups{stream_of(*model)};
  ASSERT_EQ(groups[0].reads.size(), 5u);
  const DenseTargets targets = capture_dense_targets(*model, groups, calib);
  shrink_group(*model, groups[0], kept);
  std::map<std::string, Tensor> cut;
  for (const ConsumerRead& r : groups[0].reads) cut[r.consumer] = model->parameter(r.consumer + ".weight").clone();
  const RefitResult all = refit_consumer(*model, groups[0], groups, targets, calib, 0.01);
  EXPECT_LT(all.error_after, 0.5 * all.error_before);

  std::vector<std::string> earlier;
  for (const ConsumerRead& r : groups[0].reads) {
    SCOPED_TRACE(r.consumer);
    EXPECT_GT(max_abs_diff(model->parameter(r.consumer + ".weight"), cut[r.consumer]), 1e-3) << "not refit";
    auto alone = build();
    std::vector<Group> one{consumer_view(stream_of(*alone), r)};
    const DenseTargets own = capture_dense_targets(*alone, one, calib);
    shrink_group(*alone, one[0], kept);
    for (const std::string& e : earlier)
      for (const char* t : {".weight", ".bias"})
        if (model->has_parameter(e + t)) alone->set_parameter(e + t, model->parameter(e + t).clone());
    refit_consumer(*alone, one[0], one, own, calib, 0.01);
    earlier.push_back(r.consumer);
    EXPECT_LT(max_abs_diff(model->parameter(r.consumer + ".weight"), alone->parameter(r.consumer + ".weight")), 1e-5);
  }
}

PruneOptions options(const std::string& method, bool refit) {
  PruneOptions o;
  o.method = method;
  o.target = 0.5;
  o.refit = refit;
  return o;
}

// Consumer error against the dense consumer output, on a deeper model, for every group.
TEST(Refit, LowersTheCalibrationErrorForScoreSelectAndWholeModelMethods) {
  for (const std::string method : {"magnitude", "ispasp", "pfp", "random"}) {
    Generator gen(9);
    auto model = nn::build_model("mlp:20-16-12-4", gen);
    const Calibration calib = random_calib(96, 20, 4, gen);
    const PruneReport report = prune_model(*model, calib, options(method, true), Shape{20});
    int refit = 0;
    for (const GroupChange& g : report.groups) {
      if (g.after == g.before) continue;
      ASSERT_TRUE(g.refit) << method << " group " << g.name;
      EXPECT_LT(g.refit_error_after, g.refit_error_before) << method << " group " << g.name;
      ++refit;
    }
    EXPECT_GT(refit, 0) << method;
    // The last layer's output: the refit model is closer to the dense one than the plain cut.
    Generator dense_gen(9), plain_gen(9);
    auto dense = nn::build_model("mlp:20-16-12-4", dense_gen);
    auto plain = nn::build_model("mlp:20-16-12-4", plain_gen);
    prune_model(*plain, calib, options(method, false), Shape{20});
    const Tensor want = forward(*dense, calib.inputs);
    EXPECT_LT(mean(square(forward(*model, calib.inputs) - want)).item(),
              mean(square(forward(*plain, calib.inputs) - want)).item())
        << method;
  }
}

TEST(Refit, OffChangesNothing) {
  for (const std::string method : {"magnitude", "ispasp", "pfp"}) {
    Generator g1(10), g2(10), g3(10);
    auto a = nn::build_model("mlp:20-16-12-4", g1), b = nn::build_model("mlp:20-16-12-4", g2),
         c = nn::build_model("mlp:20-16-12-4", g3);
    Generator data(3);
    const Calibration calib = random_calib(64, 20, 4, data);
    PruneOptions off = options(method, false);
    prune_model(*a, calib, off, Shape{20});
    off.refit_ridge = 123;  // read only with refit on
    prune_model(*b, calib, off, Shape{20});
    prune_model(*c, calib, options(method, true), Shape{20});
    const Tensor x = Tensor::randn({16, 20}, data);
    const Tensor ya = forward(*a, x);
    EXPECT_TRUE(shrink::testing::all_same("refit off", forward(*b, x).to_vector<float>(), ya.to_vector<float>()))
        << method;
    EXPECT_GT(max_abs_diff(forward(*c, x), ya), 0) << method << ": refit on changes the model";
  }
}

TEST(Refit, ResetsTheOptimizerStateOfTheRefitTensors) {
  Generator gen(12);
  auto model = nn::build_model("mlp:10-12-4", gen);
  const Calibration calib = random_calib(32, 10, 4, gen);
  nn::AdamW adam(model->named_parameters(), 1e-3);
  model->train();
  cross_entropy((*model)(calib.inputs), calib.labels).backward();
  adam.step();
  ASSERT_EQ(adam.step_count("3.weight"), 1);
  PruneOptions o = options("magnitude", true);
  prune_model(*model, calib, o, Shape{10}, &adam);
  EXPECT_EQ(adam.state().count("3.weight"), 0u);
  EXPECT_EQ(adam.state().count("3.bias"), 0u);
  EXPECT_EQ(adam.step_count("3.weight"), 0);
  EXPECT_EQ(adam.state().at("1.weight").at("exp_avg").size(0), 6) << "the cut producer keeps its sliced state";
  adam.zero_grad();
  cross_entropy((*model)(calib.inputs), calib.labels).backward();
  EXPECT_NO_THROW(adam.step());
}

TEST(Refit, BadRidgeIsRefusedBeforeAnythingIsCut) {
  Generator gen(13);
  auto model = nn::build_model("mlp:10-12-4", gen);
  const Calibration calib = random_calib(16, 10, 4, gen);
  for (double ridge : {0.0, -1.0, std::nan("")}) {
    PruneOptions o = options("magnitude", true);
    o.refit_ridge = ridge;
    EXPECT_THROW(prune_model(*model, calib, o, Shape{10}), Error) << ridge;
    EXPECT_EQ(model->parameter("1.weight").size(0), 12);
  }
}

using shrink::testing::ToolsTest;
using shrink::testing::run;

TEST_F(ToolsTest, PruneRefitFlagsAreValidatedAndRecorded) {
  const std::string dense = (dir_ / "d.safetensors").string();
  ASSERT_EQ(run("shrink-train --model mlp:784-40-20-2 --data " + data() + " --epochs 1 --out " + dense).exit_code, 0);
  const std::string base = "shrink-prune " + dense + " --method magnitude --keep 0.25 --calib-samples 128 --data " +
                           data() + " --out " + (dir_ / "p.safetensors").string() + " --json";
  for (const char* bad : {"0", "-1", "nan", "inf", "x"}) {
    const auto r = run(base + " --refit --refit-ridge " + bad);
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_NE(r.output.find("--refit-ridge"), std::string::npos) << r.output;
  }
  const auto on = run(base + " --refit --refit-ridge 0.05");
  ASSERT_EQ(on.exit_code, 0) << on.output;
  const auto j = nlohmann::json::parse(on.output);
  EXPECT_EQ(j["refit"], true);
  EXPECT_DOUBLE_EQ(j["refit_ridge"].get<double>(), 0.05);
  ASSERT_EQ(j["refit_groups"].size(), 2u);
  for (const auto& g : j["refit_groups"]) EXPECT_LT(g["mse_after"].get<double>(), g["mse_before"].get<double>());
  const auto off = nlohmann::json::parse(run(base).output);
  EXPECT_EQ(off["refit"], false);
  EXPECT_TRUE(off["refit_groups"].empty());
  const auto help = run("shrink-prune --help");
  EXPECT_NE(help.output.find("eyond the seed papers"), std::string::npos);
}

}  // namespace
