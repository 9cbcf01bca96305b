// prune/pfp: PFP sensitivities (§2.1), allocation and budget search (§2.2), the top-k and
// sampling pruning steps, and the hyperharmonic schedule (§2.3) of ALGORITHMS.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/shrink.h"
#include "nn/flops.h"
#include "nn/models.h"
#include "prune/group.h"
#include "prune/pfp.h"
#include "prune/pruner.h"

using namespace shrink;
using namespace shrink::prune;

namespace {

Calibration random_calibration(std::int64_t n, std::int64_t features, std::uint64_t seed) {
  Generator gen(seed);
  return {Tensor::uniform({n, features}, 0.0, 1.0, gen), Tensor::zeros({n}, DType::Int64)};
}

std::shared_ptr<nn::Module> model_of(const std::string& spec, std::uint64_t seed = 1) {
  Generator gen(seed);
  return nn::build_model(spec, gen);
}

// lenet-300-100 with widths n1, n2: 784·n1 + n1 + n1·n2 + n2 + n2·10 + 10 parameters.
std::int64_t lenet_params(std::int64_t n1, std::int64_t n2) { return 785 * n1 + n1 * n2 + n2 + 10 * n2 + 10; }

}  // namespace

TEST(Pfp, SensitivityMatchesHandComputation) {
  // W = [[-1,-1,-1], [1,1,2]]; samples x1 = [0,2,1], x2 = [-1,-2,-1]. After the split the
  // rows are relu(x1) = [0,2,1], relu(x2) = 0, relu(-x1) = 0, relu(-x2) = [1,2,1].
  //   [0,2,1]: z⁻_0 = -3, z⁺_1 = 4 -> s_1 >= max(2/3, 2/4), s_2 >= max(1/3, 2/4)
  //   [1,2,1]: z⁻_0 = -4, z⁺_1 = 5 -> s_0 >= max(1/4, 1/5), s_1 >= 2/4, s_2 >= max(1/4, 2/5)
  // so s = [1/4, 2/3, 1/2]; without the split s_0 would be 0.
  const Tensor w = Tensor::from_vector<float>({-1, -1, -1, 1, 1, 2}, {2, 3});
  const Tensor a = Tensor::from_vector<float>({0, 2, 1, -1, -2, -1}, {2, 3});
  const Scores s = pfp_sensitivity(w, a);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_NEAR(s[0], 0.25, 1e-6);
  EXPECT_NEAR(s[1], 2.0 / 3.0, 1e-6);
  EXPECT_NEAR(s[2], 0.5, 1e-6);
  const Scores p = pfp_probabilities(s);
  EXPECT_NEAR(p[0], 0.25 / (0.25 + 2.0 / 3.0 + 0.5), 1e-6);
  // A vanishing z contributes nothing: an all-zero sample scores 0.
  const Scores zero = pfp_sensitivity(w, Tensor::zeros({1, 3}));
  for (double v : zero) EXPECT_EQ(v, 0.0);
}

TEST(Pfp, ProbabilitiesAreADistribution) {
  auto model = model_of("lenet-300-100");
  const auto groups = build_groups(*model);
  const PfpResult r = pfp_allocate(*model, groups, random_calibration(64, 784, 2), 0.3);
  ASSERT_EQ(r.probabilities.size(), 2u);
  for (const auto& g : groups) {
    const Scores& p = r.probabilities.at(g.name);
    const Scores& s = r.sensitivities.at(g.name);
    ASSERT_EQ(static_cast<std::int64_t>(p.size()), g.size);
    EXPECT_NEAR(std::accumulate(p.begin(), p.end(), 0.0), 1.0, 1e-9);
    for (double v : p) EXPECT_GE(v, 0.0);
    for (double v : s) EXPECT_LE(v, 1.0 + 1e-5);  // g_ij = W⁺_ij a_j / z⁺_i <= 1
  }
  EXPECT_EQ(r.samples, 64);  // the §2.2 rule wants 125; capped to the data given
  EXPECT_EQ(pfp_sample_size(*model, {784}, 1e-12), 125);  // ceil(3 log(8·300·410 / 1e-12))
}

TEST(Pfp, BudgetSearchLandsWithinHalfAPercent) {
  const Calibration calib = random_calibration(128, 784, 3);
  const double dense = static_cast<double>(lenet_params(300, 100));
  for (double target : {0.5, 0.2, 0.1, 0.05}) {
    auto model = model_of("lenet-300-100");
    auto groups = build_groups(*model);
    Generator gen(0);
    const PfpResult r = pfp_prune(*model, groups, calib, target, {}, gen);
    const std::int64_t n1 = r.keep.at("1"), n2 = r.keep.at("3");
    // Physically smaller, and the count matches the closed form.
    EXPECT_EQ(model->num_parameters(), lenet_params(n1, n2)) << "target " << target;
    EXPECT_EQ(model->parameter("1.weight").shape(), (Shape{n1, 784}));
    EXPECT_EQ(model->parameter("3.weight").shape(), (Shape{n2, n1}));
    EXPECT_EQ(model->parameter("5.weight").shape(), (Shape{10, n2}));
    const double achieved = static_cast<double>(model->num_parameters()) / dense;
    EXPECT_NEAR(r.achieved_ratio, achieved, 1e-12);
    EXPECT_LE(std::fabs(achieved - target), 0.005 * target) << "target " << target << " got " << achieved << " widths " << n1 << " " << n2;
    EXPECT_GT(r.epsilon, 0.0);
    const Tensor y = (*model)(calib.inputs);
    EXPECT_EQ(y.shape(), (Shape{128, 10}));
  }
}

TEST(Pfp, FlopBudget) {
  const Calibration calib = random_calibration(128, 784, 4);
  auto model = model_of("lenet-300-100");
  auto groups = build_groups(*model);
  const double dense = static_cast<double>(nn::flops_per_sample(*model, {784}));
  EXPECT_EQ(pfp_cost(*model, groups, {784}, {}, PfpBudget::Flops), dense);
  EXPECT_EQ(pfp_cost(*model, groups, {784}, {{"1", 7}, {"3", 5}}, PfpBudget::Parameters),
            static_cast<double>(lenet_params(7, 5)));
  PfpOptions options;
  options.budget = PfpBudget::Flops;
  Generator gen(0);
  pfp_prune(*model, groups, calib, 0.15, options, gen);
  const double achieved = static_cast<double>(nn::flops_per_sample(*model, {784})) / dense;
  EXPECT_LE(std::fabs(achieved - 0.15), 0.005 * 0.15) << achieved;
}

// Through prune_model (shrink-prune --method pfp --target-flops): lenet5's parameters sit in
// its linear layers, its FLOPs in its convolutions, so a FLOPs target priced in parameters
// misses by far (it had: 0.74 of the FLOPs kept for a target of 0.5); priced in FLOPs it lands
// within the search's tolerance. A parameter target still prices parameters.
TEST(Pfp, PruneModelMeetsAFlopsTargetInFlopsAndAParameterTargetInParameters) {
  const Shape sample{1, 28, 28};
  for (const TargetKind kind : {TargetKind::Flops, TargetKind::Params}) {
    SCOPED_TRACE(target_name(kind));
    auto model = model_of("lenet5", 3);
    const double flops = static_cast<double>(nn::flops_per_sample(*model, sample));
    const double params = static_cast<double>(model->num_parameters());
    Generator gen(7);
    const Calibration calib{Tensor::uniform({64, 1, 28, 28}, 0.0, 1.0, gen), Tensor::zeros({64}, DType::Int64)};
    PruneOptions o;
    o.method = "pfp";
    o.target_kind = kind;
    o.target = 0.5;
    prune_model(*model, calib, o, sample);
    const double kept = kind == TargetKind::Flops ? nn::flops_per_sample(*model, sample) / flops
                                                  : model->num_parameters() / params;
    EXPECT_LE(kept, 0.5 * 1.005);
    EXPECT_GE(kept, 0.5 * 0.95);  // the budget spent, not undershot either
  }
}

TEST(Pfp, DeterministicVariantKeepsTopSensitivity) {
  const Calibration calib = random_calibration(96, 784, 5);
  auto dense = model_of("lenet-300-100");
  auto model = model_of("lenet-300-100");
  auto groups = build_groups(*model);
  Generator gen(0);
  const PfpResult r = pfp_prune(*model, groups, calib, 0.2, {}, gen);
  const Scores& s = r.sensitivities.at("1");
  std::vector<std::int64_t> order(s.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return s[a] > s[b]; });
  const std::int64_t n = r.keep.at("1");
  ASSERT_LT(n, 300);
  EXPECT_GT(s[order[n - 1]], s[order[n]]);  // a strict cut (no tie decided the choice)
  std::vector<std::int64_t> top(order.begin(), order.begin() + n);
  std::sort(top.begin(), top.end());
  const Tensor idx = Tensor::from_vector(top, {n});
  const auto expect = index_select(dense->parameter("1.weight"), 0, idx).to_vector<float>();
  EXPECT_EQ(model->parameter("1.weight").to_vector<float>(), expect);
}

TEST(Pfp, SamplingIsDeterministicForASeed) {
  const Calibration calib = random_calibration(64, 784, 6);
  PfpOptions options;
  options.sampling = true;
  std::vector<std::vector<float>> runs;
  for (int rep = 0; rep < 2; ++rep) {
    auto model = model_of("lenet-300-100");
    auto groups = build_groups(*model);
    Generator gen(42);
    pfp_prune(*model, groups, calib, 0.2, options, gen);
    runs.push_back(model->parameter("3.weight").to_vector<float>());
    EXPECT_EQ((*model)(calib.inputs).shape(), (Shape{64, 10}));
  }
  EXPECT_EQ(runs[0], runs[1]);
}

// Alg. 1's reweighting makes Ŵa = Σ_j count_j/(M p_j) W_:j a_j an unbiased estimate of Wa;
// keeping the drawn columns unweighted is not (the check that this test can fail).
TEST(Pfp, SampledLayerIsUnbiased) {
  Generator init(9);
  const std::int64_t out = 6, in = 40;
  const Tensor w = Tensor::randn({out, in}, init);
  const Tensor a = Tensor::uniform({8, in}, 0.0, 1.0, init);
  const Scores p = pfp_probabilities(pfp_sensitivity(w, a));
  const auto W = w.to_vector<float>(), x = a.to_vector<float>();  // estimate z for row 0 of a
  std::vector<double> dense(out, 0), mean(out, 0), mean_sq(out, 0), unweighted(out, 0);
  for (std::int64_t i = 0; i < out; ++i)
    for (std::int64_t j = 0; j < in; ++j) dense[i] += W[i * in + j] * x[j];
  const int seeds = 2000;
  for (int seed = 0; seed < seeds; ++seed) {
    Generator gen(seed);
    const PfpSample sample = pfp_sample(p, 12, gen);
    EXPECT_EQ(sample.kept.size(), sample.scale.size());
    for (std::int64_t i = 0; i < out; ++i) {
      double z = 0, plain = 0;
      for (std::size_t k = 0; k < sample.kept.size(); ++k) {
        const std::int64_t j = sample.kept[k];
        z += sample.scale[k] * W[i * in + j] * x[j];
        plain += W[i * in + j] * x[j];
      }
      mean[i] += z / seeds, mean_sq[i] += z * z / seeds, unweighted[i] += plain / seeds;
    }
  }
  double worst_plain = 0;
  for (std::int64_t i = 0; i < out; ++i) {
    const double se = std::sqrt((mean_sq[i] - mean[i] * mean[i]) / seeds);
    EXPECT_LE(std::fabs(mean[i] - dense[i]), 4.5 * se + 1e-6) << "output " << i;
    worst_plain = std::max(worst_plain, std::fabs(unweighted[i] - dense[i]) / se);
  }
  EXPECT_GT(worst_plain, 10.0);
  Generator gen(0);
  const PfpSample one = pfp_sample(p, 12, gen);
  EXPECT_NEAR(pfp_expected_unique(p, static_cast<double>(one.draws)), 12.0, 1.0);
}

// End to end on a two-layer network: averaging the pruned models' outputs over seeds
// recovers the dense output (the classifier is the reweighted consumer).
TEST(Pfp, PrunedNetworkOutputIsUnbiased) {
  const Calibration calib = random_calibration(32, 20, 10);
  auto dense = model_of("mlp:20-30-5");
  const auto y_dense = (*dense)(calib.inputs).to_vector<float>();
  PfpOptions options;
  options.sampling = true;
  const int seeds = 600;
  std::vector<double> mean(y_dense.size(), 0);
  for (int seed = 0; seed < seeds; ++seed) {
    auto model = model_of("mlp:20-30-5");
    auto groups = build_groups(*model);
    Generator gen(seed);
    pfp_prune(*model, groups, calib, 0.5, options, gen);
    const auto y = (*model)(calib.inputs).to_vector<float>();
    for (std::size_t k = 0; k < y.size(); ++k) mean[k] += y[k] / seeds;
  }
  double err = 0, scale = 0;
  for (std::size_t k = 0; k < y_dense.size(); ++k) {
    err += (mean[k] - y_dense[k]) * (mean[k] - y_dense[k]);
    scale += y_dense[k] * y_dense[k];
  }
  EXPECT_LT(std::sqrt(err / scale), 0.06);  // ~0.02 here; 0.18 without the reweighting
}

// PFPNetRand draws n_l distinct channels only in expectation: one draw of LeNet-5 at a FLOPs
// target of 0.3 kept 0.40 (and the tool called that the nearest it could go). Of several
// draws the sampler keeps one whose cost lands near the budget: at or just below it here,
// on every seed and target (with one draw, 6 of these 12 cases land above 1.005x).
TEST(Pfp, SamplingLandsNearItsBudget) {
  const Shape sample{1, 28, 28};
  for (const double target : {0.5, 0.3, 0.2})
    for (std::uint64_t seed = 0; seed < 4; ++seed) {
      SCOPED_TRACE(testing::Message() << "target " << target << " seed " << seed);
      auto model = model_of("lenet5", 3 + seed);
      const double flops = static_cast<double>(nn::flops_per_sample(*model, sample));
      Generator gen(11 + seed);
      const Calibration calib{Tensor::uniform({64, 1, 28, 28}, 0.0, 1.0, gen), Tensor::zeros({64}, DType::Int64)};
      PruneOptions o;
      o.method = "pfp-sampling";
      o.target_kind = TargetKind::Flops;
      o.target = target;
      o.seed = seed;
      prune_model(*model, calib, o, sample);
      const double kept = nn::flops_per_sample(*model, sample) / flops;
      EXPECT_LE(kept, target * 1.005);
      EXPECT_GE(kept, target * 0.7);
    }
}

TEST(Pfp, HyperharmonicSchedule) {
  const auto r = pfp_hyperharmonic_schedule(3, 1.0);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_DOUBLE_EQ(r[0], 0.5);
  EXPECT_DOUBLE_EQ(r[1], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r[2], 0.75);
  const auto s = pfp_hyperharmonic_schedule(2, 0.5);
  EXPECT_DOUBLE_EQ(s[0], 1.0 - 1.0 / std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(s[1], 1.0 - 1.0 / std::sqrt(3.0));
  EXPECT_THROW(pfp_hyperharmonic_schedule(2, 0.0), Error);
}

TEST(Pfp, RejectsBadArguments) {
  auto model = model_of("lenet-300-100");
  const auto groups = build_groups(*model);
  const Calibration calib = random_calibration(8, 784, 11);
  EXPECT_THROW(pfp_allocate(*model, groups, calib, 0.0), Error);
  EXPECT_THROW(pfp_allocate(*model, groups, calib, 1.5), Error);
  EXPECT_THROW(pfp_sensitivity(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})), Error);
  Generator gen(0);
  EXPECT_THROW(pfp_sample({0.5, 0.5}, 3, gen), Error);
}

// A residual stream is read by several layers: its sensitivity is the largest of what each
// consumer alone gives (§2.1 per consumer), so a unit any consumer needs stays likely.
TEST(Pfp, ResidualStreamSensitivityIsTheLargestOverItsConsumers) {
  auto model = model_of("resnet20:in_channels=1,input_size=16", 4);
  const Shape sample{1, 16, 16};
  Generator gen(5);
  const Tensor x = Tensor::uniform({6, 1, 16, 16}, 0.0, 1.0, gen);
  const std::vector<Group> groups = build_groups(*model, sample, GroupOptions{false, true});
  const auto all = pfp_sensitivities(*model, groups, x);
  int streams = 0;
  for (const Group& g : groups) {
    if (g.reads.size() < 2) continue;
    ++streams;
    SCOPED_TRACE(g.name);
    Scores expected(all.at(g.name).size(), 0.0);
    bool differ = false;
    for (const ConsumerRead& r : g.reads) {
      const Scores s = pfp_sensitivities(*model, {consumer_view(g, r)}, x).at(g.name);
      ASSERT_EQ(s.size(), expected.size());
      for (std::size_t j = 0; j < s.size(); ++j) {
        differ = differ || (expected[j] > 0 && s[j] != expected[j]);
        expected[j] = std::max(expected[j], s[j]);
      }
    }
    EXPECT_TRUE(differ) << "the consumers agree, so the test shows nothing";
    EXPECT_EQ(all.at(g.name), expected);
  }
  EXPECT_EQ(streams, 3);  // one per stage
}

// The sampling variant reweights every layer that reads a sampled residual stream by the same
// count_j / (M p_j): each consumer's kept input slice is its dense slice times one factor per
// kept channel, the same factor in every consumer.
TEST(Pfp, SamplingScalesEveryConsumerOfAStreamAlike) {
  auto model = model_of("resnet20:in_channels=1,input_size=16", 6);
  const auto dense = model_of("resnet20:in_channels=1,input_size=16", 6);
  const Shape sample{1, 16, 16};
  Generator data(7);
  const Calibration calib{Tensor::uniform({8, 1, 16, 16}, 0.0, 1.0, data), Tensor::zeros({8}, DType::Int64)};
  // The first stage's stream alone, so that no consumer loses filters of its own.
  std::vector<Group> groups;
  for (const Group& g : build_groups(*model, sample, GroupOptions{false, true}))
    if (groups.empty() && g.reads.size() >= 2) groups.push_back(g);
  ASSERT_EQ(groups.size(), 1u);
  PfpOptions options;
  options.sampling = true;
  Generator gen(8);
  pfp_prune(*model, groups, calib, 0.97, options, gen);
  ASSERT_LT(groups[0].size, 16);
  const Group& g = groups[0];
  ASSERT_EQ(g.reads.size(), 5u);  // layer1.{0,1,2}.conv1, layer2.0.conv1 and its projection shortcut
  std::vector<double> factor(g.original.size(), 0.0);
  for (const ConsumerRead& r : g.reads) {
    const Tensor& w_new = model->parameter(r.consumer + ".weight");
    const Tensor& w_old = dense->parameter(r.consumer + ".weight");
    const std::int64_t out = w_new.size(0), in_new = w_new.size(1), in_old = w_old.size(1);
    const std::int64_t taps = w_new.numel() / (out * in_new);
    ASSERT_EQ(in_new, static_cast<std::int64_t>(g.original.size()));
    const auto a = w_new.to_vector<float>(), b = w_old.to_vector<float>();
    for (std::int64_t k = 0; k < in_new; ++k)
      for (std::int64_t o = 0; o < out; ++o)
        for (std::int64_t t = 0; t < taps; ++t) {
          const float before = b[(o * in_old + g.original[k]) * taps + t];
          if (std::fabs(before) < 1e-3f) continue;
          const double f = a[(o * in_new + k) * taps + t] / static_cast<double>(before);
          if (factor[k] == 0.0) factor[k] = f;
          EXPECT_NEAR(f, factor[k], 1e-4 * factor[k]) << r.consumer << " channel " << k;
        }
  }
  for (double f : factor) EXPECT_GT(f, 0.0);
}
