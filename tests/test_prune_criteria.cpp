// prune/criteria.h: top-k, magnitude, random and Taylor scores against hand and finite
// computations; i-SpaSP and GFS recover a planted support of a two-layer ReLU network.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "core/shrink.h"
#include "nn/activation.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/sequential.h"
#include "prune/criteria.h"
#include "prune/group.h"
#include "prune/ispasp_phi.h"

using namespace shrink;
using namespace shrink::prune;

namespace {

using Indices = std::vector<std::int64_t>;

std::vector<float> gaussian(std::int64_t n, double scale, Generator& gen) {
  auto v = Tensor::randn({n}, gen).to_vector<float>();
  for (float& x : v) x = static_cast<float>(x * scale);
  return v;
}

std::shared_ptr<nn::Sequential> two_layer(std::vector<float> w1, std::vector<float> b1,
                                          std::vector<float> w2, std::vector<float> b2,
                                          std::int64_t d, std::int64_t m, std::int64_t k) {
  auto model = std::make_shared<nn::Sequential>();  // "0" Linear, "1" ReLU, "2" Linear
  model->push_back(std::make_shared<nn::Linear>(Tensor::from_vector(w1, {m, d}), Tensor::from_vector(b1, {m})));
  model->push_back(nn::make_activation("relu"));
  model->push_back(std::make_shared<nn::Linear>(Tensor::from_vector(w2, {k, m}), Tensor::from_vector(b2, {k})));
  return model;
}

// x -> W2 relu(W1 x + b1) + b2 whose output depends on the `planted` hidden units only:
// their outgoing columns are O(out_scale), every other column is O(1e-4). The first layer
// is random for every unit (same weight distribution); the planted units get bias +1, the
// others 0, so they are the most active and their incoming weights are not the largest.
struct Planted {
  std::shared_ptr<nn::Sequential> model;
  Indices planted;
  Calibration calib;
};

Planted make_planted(std::int64_t d, std::int64_t m, std::int64_t k, std::int64_t s, std::int64_t n,
                     double out_scale, std::uint64_t seed) {
  Generator gen(seed);
  Planted p;
  std::vector<std::int64_t> perm(static_cast<std::size_t>(m));
  for (std::int64_t i = 0; i < m; ++i) perm[static_cast<std::size_t>(i)] = i;
  for (std::int64_t i = m - 1; i > 0; --i)  // Fisher-Yates: the planted units are scattered
    std::swap(perm[static_cast<std::size_t>(i)], perm[gen.next_below(static_cast<std::uint64_t>(i + 1))]);
  p.planted.assign(perm.begin(), perm.begin() + s);
  std::sort(p.planted.begin(), p.planted.end());
  auto w1 = gaussian(m * d, 1.0 / std::sqrt(static_cast<double>(d)), gen);
  std::vector<float> b1(static_cast<std::size_t>(m), 0.0f);
  auto w2 = gaussian(k * m, 1e-4, gen);
  const auto strong = gaussian(k * m, out_scale, gen);
  for (std::int64_t j : p.planted) {
    b1[static_cast<std::size_t>(j)] = 1.0f;
    for (std::int64_t i = 0; i < k; ++i) w2[static_cast<std::size_t>(i * m + j)] = strong[static_cast<std::size_t>(i * m + j)];
  }
  p.model = two_layer(w1, b1, w2, gaussian(k, 0.1, gen), d, m, k);
  p.calib.inputs = Tensor::randn({n, d}, gen);
  NoGradGuard no_grad;  // labels: the dense network's own predictions
  p.calib.labels = argmax((*p.model)(p.calib.inputs), 1);
  return p;
}

std::int64_t overlap(const Indices& a, const Indices& b) {
  return std::count_if(a.begin(), a.end(), [&](std::int64_t i) { return std::find(b.begin(), b.end(), i) != b.end(); });
}

// ‖U - U_S‖_F / ‖U‖_F at the consumer, U_S = the consumer on the kept units only.
double relative_residual(nn::Sequential& model, const Indices& kept, const Tensor& x) {
  NoGradGuard no_grad;
  const Tensor h = (*model[1])((*model[0])(x));
  auto& consumer = dynamic_cast<nn::Linear&>(*model[2]);
  const Tensor idx = Tensor::from_vector(kept, {static_cast<std::int64_t>(kept.size())});
  const Tensor u = consumer(h);
  const Tensor u_s = linear(index_select(h, 1, idx), index_select(consumer.weight(), 1, idx), consumer.bias());
  return std::sqrt(sum(square(u - u_s)).item() / sum(square(u)).item());
}

// A Linear that pruning knows only through its channel declaration: exercises the
// criteria's paths for consumers other than nn::Linear (masked instead of sliced inputs).
class OpaqueLinear : public nn::Module {
 public:
  OpaqueLinear(const Tensor& w, const Tensor& b) {
    register_parameter("weight", w.clone());
    register_parameter("bias", b.clone());
  }
  std::string type_name() const override { return "OpaqueLinear"; }
  Tensor forward(const Tensor& x) override { return linear(x, parameter("weight"), parameter("bias")); }
  ChannelSpec channels() const override {
    return {ChannelSpec::Kind::Transform, {{"weight", 1}}, {{"weight", 0}, {"bias", 0}}};
  }
};

}  // namespace

TEST(TopK, KeepsTheLargestSortedByIndexWithTiesToTheLowerIndex) {
  const Scores s{1.0, 3.0, 3.0, 2.0, 3.0, -1.0};
  EXPECT_EQ(top_k(s, 2), (Indices{1, 2}));
  EXPECT_EQ(top_k(s, 4), (Indices{1, 2, 3, 4}));
  EXPECT_EQ(top_k(s, 0), Indices{});
  EXPECT_EQ(top_k(s, 6), (Indices{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(top_k({0.0, NAN, -INFINITY, 5.0}, 3), (Indices{0, 2, 3}));  // NaN ranks last
  EXPECT_THROW(top_k(s, 7), Error);
  EXPECT_THROW(top_k(s, -1), Error);
}

// The reference rule, written the slow way: a stable sort of every index by "larger first,
// NaN last", the first k, sorted by index.
Indices top_k_by_full_sort(const Scores& s, std::int64_t k) {
  Indices order(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    const double sa = s[static_cast<std::size_t>(a)], sb = s[static_cast<std::size_t>(b)];
    if (std::isnan(sa) || std::isnan(sb)) return !std::isnan(sa) && std::isnan(sb);
    return sa > sb;
  });
  order.resize(static_cast<std::size_t>(k));
  std::sort(order.begin(), order.end());
  return order;
}

TEST(TopK, EqualsTheFullSortOnRandomScoresWithTiesNansAndInfinities) {
  std::mt19937_64 rng(3);
  for (std::int64_t n : {1, 2, 3, 7, 31, 100, 257, 1001}) {
    for (int trial = 0; trial < 4; ++trial) {
      // Few distinct values, so ties are everywhere; some NaN, +-inf and signed zeros.
      Scores s(static_cast<std::size_t>(n));
      for (double& x : s) {
        const auto r = rng() % 12;
        x = r == 0 ? NAN : r == 1 ? INFINITY : r == 2 ? -INFINITY : r == 3 ? -0.0 : static_cast<double>(r % 5);
      }
      if (trial == 3)
        for (double& x : s) x = std::ldexp(static_cast<double>(rng() % 1000003), -20);  // distinct-ish
      for (std::int64_t k = 0; k <= n; k += std::max<std::int64_t>(1, n / 13)) {
        SCOPED_TRACE("n=" + std::to_string(n) + " trial=" + std::to_string(trial) + " k=" + std::to_string(k));
        EXPECT_EQ(top_k(s, k), top_k_by_full_sort(s, k));
      }
      EXPECT_EQ(top_k(s, n), top_k_by_full_sort(s, n));
    }
  }
  EXPECT_EQ(top_k(Scores(5, NAN), 2), (Indices{0, 1}));  // all NaN: the lowest indices
}

TEST(Criteria, MagnitudeEqualsTheFloat64LoopOnAWideLayer) {
  // 37 inputs -> 1001 units -> 3 outputs: above the kernels' parallel grain.
  Generator gen(5);
  const std::int64_t d = 37, m = 1001, k = 3;
  auto model = two_layer(gaussian(m * d, 1.0, gen), gaussian(m, 1.0, gen), gaussian(k * m, 1.0, gen),
                         gaussian(k, 1.0, gen), d, m, k);
  const auto groups = build_groups(*model);
  const auto w = model->parameter(groups[0].producer + ".weight").to_vector<float>();
  for (int p : {1, 2}) {
    const Scores got = score_magnitude(*model, groups[0], p);
    ASSERT_EQ(got.size(), static_cast<std::size_t>(m));
    for (std::int64_t u = 0; u < m; ++u) {
      double total = 0;
      for (std::int64_t i = 0; i < d; ++i) {
        const double x = w[static_cast<std::size_t>(u * d + i)];
        total += p == 1 ? std::abs(x) : x * x;
      }
      const double want = p == 1 ? total : std::sqrt(total);
      EXPECT_NEAR(got[static_cast<std::size_t>(u)], want, 1e-13 * want) << "p " << p << " unit " << u;
    }
  }
}

TEST(Criteria, MagnitudeIsTheNormOfTheProducerRowsWithoutTheBias) {
  auto model = two_layer({1, -2, 3, 0, 0.5f, -0.5f, 0, 0, 0}, {100, -100, 7}, {1, 1, 1}, {0}, 3, 3, 1);
  const auto groups = build_groups(*model);
  ASSERT_EQ(groups.size(), 1u);
  const Scores l1 = score_magnitude(*model, groups[0], 1), l2 = score_magnitude(*model, groups[0], 2);
  EXPECT_EQ(l1, (Scores{6.0, 1.0, 0.0}));
  ASSERT_EQ(l2.size(), 3u);
  EXPECT_NEAR(l2[0], std::sqrt(14.0), 1e-6);
  EXPECT_NEAR(l2[1], std::sqrt(0.5), 1e-6);
  EXPECT_EQ(l2[2], 0.0);
  EXPECT_THROW(score_magnitude(*model, groups[0], 3), Error);
}

TEST(Criteria, RandomIsDeterministicPerSeed) {
  Group g;
  g.size = 50;
  Generator a(11), b(11), c(12);
  const Scores sa = score_random(g, a);
  EXPECT_EQ(sa, score_random(g, b));
  EXPECT_NE(sa, score_random(g, c));
  ASSERT_EQ(sa.size(), 50u);
  for (double x : sa) EXPECT_TRUE(x >= 0.0 && x < 1.0);
}

TEST(Criteria, TaylorMatchesTheFiniteDifferenceOfScalingEachUnit) {
  Generator gen(21);
  const std::int64_t d = 3, m = 4, k = 3, n = 6;
  const auto w1 = gaussian(m * d, 1.0, gen), b1 = gaussian(m, 0.5, gen), w2 = gaussian(k * m, 1.0, gen),
             b2 = gaussian(k, 0.1, gen);
  auto model = two_layer(w1, b1, w2, b2, d, m, k);
  const Calibration calib{Tensor::randn({n, d}, gen), Tensor::from_vector(Indices{0, 1, 2, 2, 1, 0}, {n})};
  const auto groups = build_groups(*model);
  model->train();
  const Scores taylor = score_taylor(*model, groups[0], calib);
  EXPECT_TRUE(model->is_training());  // mode restored
  for (const Tensor& p : model->parameters()) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_FALSE(p.grad().defined());  // no weight gradients accumulated
  }
  // ReLU is positively homogeneous: scaling row j and bias j of layer 0 by (1 + e) scales
  // a_j by (1 + e), so dL/de at 0 = sum_n a_nj dL/da_nj, the Taylor term.
  const double eps = 1e-2;
  for (std::int64_t j = 0; j < m; ++j) {
    auto loss_at = [&](double e) {
      auto w = w1;
      auto b = b1;
      for (std::int64_t c = 0; c < d; ++c) w[static_cast<std::size_t>(j * d + c)] *= static_cast<float>(1 + e);
      b[static_cast<std::size_t>(j)] *= static_cast<float>(1 + e);
      auto scaled = two_layer(w, b, w2, b2, d, m, k);
      NoGradGuard no_grad;
      return cross_entropy((*scaled)(calib.inputs), calib.labels).item();
    };
    const double fd = std::abs((loss_at(eps) - loss_at(-eps)) / (2 * eps));
    EXPECT_NEAR(taylor[static_cast<std::size_t>(j)], fd, 1e-3 * std::max(1.0, fd)) << "unit " << j;
  }
}

TEST(Criteria, IspaspRecoversAPlantedSupport) {
  const std::int64_t m = 200, s = 20;
  Planted p = make_planted(/*d=*/30, m, /*k=*/50, s, /*n=*/512, /*out_scale=*/3.0, 1);
  const auto groups = build_groups(*p.model);
  ASSERT_EQ(groups.size(), 1u);
  const Indices kept = select_ispasp(*p.model, groups[0], s, p.calib, 20, /*batch_size=*/100);
  EXPECT_EQ(kept, p.planted);
  EXPECT_LT(relative_residual(*p.model, kept, p.calib.inputs), 1e-3);
  // The planted units do not have the largest incoming weights: magnitude misses them.
  EXPECT_LT(overlap(top_k(score_magnitude(*p.model, groups[0], 1), s), p.planted), s);
  // Minibatch size does not change the choice; every parameter is left as it was.
  EXPECT_EQ(select_ispasp(*p.model, groups[0], s, p.calib, 20, 512), kept);
  for (const Tensor& t : p.model->parameters()) {
    EXPECT_TRUE(t.requires_grad());
    EXPECT_FALSE(t.grad().defined());
  }
}

TEST(Criteria, IspaspReturnsExactlyKeepIndicesEvenWithDeadUnits) {
  Generator gen(5);
  const std::int64_t d = 4, m = 12, k = 3;
  auto w1 = gaussian(m * d, 1.0, gen);
  std::vector<float> b1(static_cast<std::size_t>(m), -100.0f);  // every unit but 3 and 7 is dead
  b1[3] = b1[7] = 10.0f;
  auto model = two_layer(w1, b1, gaussian(k * m, 1.0, gen), gaussian(k, 1.0, gen), d, m, k);
  const Calibration calib{Tensor::randn({32, d}, gen), Tensor()};
  const auto groups = build_groups(*model);
  const Indices kept = select_ispasp(*model, groups[0], 5, calib);
  ASSERT_EQ(kept.size(), 5u);
  EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end()));
  EXPECT_TRUE(std::adjacent_find(kept.begin(), kept.end()) == kept.end());
  EXPECT_EQ(overlap(kept, {3, 7}), 2);
  EXPECT_EQ(select_ispasp(*model, groups[0], 5, calib), kept);  // deterministic
  EXPECT_EQ(select_ispasp(*model, groups[0], m, calib).size(), static_cast<std::size_t>(m));
  EXPECT_THROW(select_ispasp(*model, groups[0], 0, calib), Error);
  EXPECT_THROW(select_ispasp(*model, groups[0], m + 1, calib), Error);
}

TEST(Criteria, GfsRecoversAPlantedSupport) {
  const std::int64_t m = 60, s = 6;
  Planted p = make_planted(/*d=*/20, m, /*k=*/10, s, /*n=*/512, /*out_scale=*/1.0, 2);
  const auto groups = build_groups(*p.model);
  p.model->train();
  const Indices kept = select_gfs(*p.model, groups[0], s, p.calib);
  EXPECT_EQ(kept, p.planted);
  EXPECT_TRUE(p.model->is_training());
  EXPECT_LT(relative_residual(*p.model, kept, p.calib.inputs), 1e-3);
  EXPECT_THROW(select_gfs(*p.model, groups[0], m + 1, p.calib), Error);
}

TEST(Criteria, ConsumersKnownOnlyByTheirChannelsGiveTheSameSelection) {
  Planted p = make_planted(/*d=*/20, /*m=*/60, /*k=*/10, /*s=*/6, /*n=*/256, 1.0, 3);
  auto opaque = std::make_shared<nn::Sequential>();
  opaque->push_back((*p.model)[0]);
  opaque->push_back((*p.model)[1]);
  auto& consumer = dynamic_cast<nn::Linear&>(*(*p.model)[2]);
  opaque->push_back(std::make_shared<OpaqueLinear>(consumer.weight(), consumer.bias()));
  const Group g = build_groups(*p.model)[0], h = build_groups(*opaque)[0];
  EXPECT_EQ(select_ispasp(*opaque, h, 6, p.calib, 10, 64), select_ispasp(*p.model, g, 6, p.calib, 10, 64));
  EXPECT_EQ(select_gfs(*opaque, h, 4, p.calib), select_gfs(*p.model, g, 4, p.calib));
}

// i-SpaSP on a residual stream (--prune-residual): J sums the residuals of every layer reading
// the stream, each on its own H (the stream after the adds before it) and behind its own
// BatchNorm, so phi and the activation mass are sums over the consumers. Reproduced here from
// the public pieces, with phi by autograd where the criterion uses the closed form.
TEST(Criteria, IspaspOnAResidualStreamSumsItsConsumers) {
  Generator gen(31);
  auto model = nn::build_model("resnet20:in_channels=1,input_size=16", gen);
  const Calibration calib{Tensor::uniform({16, 1, 16, 16}, 0, 1, gen), Tensor::zeros({16}, DType::Int64)};
  Group stream;
  for (const Group& g : build_groups(*model, {1, 16, 16}, GroupOptions{false, true}))
    if (g.reads.size() >= 2 && stream.name.empty()) stream = g;
  ASSERT_EQ(stream.reads.size(), 5u);
  const std::int64_t m = stream.size, keep = 6;
  for (int iterations : {1, 3}) {
    SCOPED_TRACE(iterations);
    const Indices kept = select_ispasp(*model, stream, keep, calib, iterations);

    model->eval();
    Scores mass(static_cast<std::size_t>(m), 0.0);
    std::vector<std::vector<Tensor>> hidden;
    std::vector<IspaspBlock> blocks;
    for (const ConsumerRead& r : stream.reads) {
      hidden.push_back(group_activation(*model, consumer_view(stream, r), calib.inputs, 64));
      blocks.push_back({*model->child(r.consumer), r.norm_after.empty() ? nullptr : model->child(r.norm_after).get(),
                        false});
      const Scores a = sum_per_channel(hidden.back().front(), 1);
      for (std::int64_t j = 0; j < m; ++j) mass[j] += a[j];
    }
    Indices support;
    for (int it = 0; it < iterations; ++it) {
      Scores phi(static_cast<std::size_t>(m), 0.0);
      for (std::size_t c = 0; c < blocks.size(); ++c) {
        const Scores part = autograd_phi(blocks[c], hidden[c], 1, support, m, 64);
        for (std::int64_t j = 0; j < m; ++j) phi[j] += part[j];
      }
      Scores merged(static_cast<std::size_t>(m), -std::numeric_limits<double>::infinity());
      for (std::int64_t j : top_k(phi, 2 * keep)) merged[j] = mass[j];
      for (std::int64_t j : support) merged[j] = mass[j];
      support = top_k(merged, keep);
    }
    EXPECT_EQ(kept, support);
    EXPECT_EQ(kept.size(), static_cast<std::size_t>(keep));
    // Not what the first consumer alone would choose, or the test would show nothing.
    EXPECT_NE(select_ispasp(*model, consumer_view(stream, stream.reads.front()), keep, calib, iterations), kept);
  }
}
