// prune/pqi: the PQ Index of Diao et al. (ICLR 2023) against its closed forms and axioms,
// and the SAP keep/prune rule r = ceil(d (1+eta)^{-q/(q-p)} (1-I)^{qp/(q-p)}),
// c = floor(d min(gamma (1 - r/d), beta)).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "core/shrink.h"
#include "prune/pqi.h"

using namespace shrink;
using namespace shrink::prune;

namespace {

std::vector<double> gaussian(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

}  // namespace

TEST(Pqi, KeepBoundMatchesClosedFormHalfOne) {
  // (p, q) = (0.5, 1), eta = 0: r = (sum sqrt|w|)^2 / sum |w|.
  for (std::size_t d : {1u, 2u, 7u, 100u, 1001u}) {
    const auto w = gaussian(d, d);
    double s_half = 0, s_one = 0;
    for (double x : w) s_half += std::sqrt(std::abs(x)), s_one += std::abs(x);
    SapOptions o;
    const double r = pqi_keep_bound(static_cast<std::int64_t>(d), pq_index(w, 0.5, 1.0), o);
    EXPECT_NEAR(r, s_half * s_half / s_one, 1e-9 * static_cast<double>(d)) << "d = " << d;
  }
}

TEST(Pqi, KeepBoundMatchesClosedFormOneTwo) {
  // (p, q) = (1, 2), eta = 0: r = (sum |w|)^2 / sum w^2.
  for (std::size_t d : {1u, 3u, 64u, 999u}) {
    const auto w = gaussian(d, 7 * d);
    double s1 = 0, s2 = 0;
    for (double x : w) s1 += std::abs(x), s2 += x * x;
    SapOptions o;
    o.p = 1;
    o.q = 2;
    const double r = pqi_keep_bound(static_cast<std::int64_t>(d), pq_index(w, 1, 2), o);
    EXPECT_NEAR(r, s1 * s1 / s2, 1e-9 * static_cast<double>(d)) << "d = " << d;
  }
  // For Gaussian weights r/d -> (E|w|^p)^(q/(q-p)) / (E|w|^q)^(p/(q-p)) with
  // E|w|^a = 2^(a/2) Γ((a+1)/2) / √π: (1, 2) gives (E|w|)² / E w² = 2/π (≈ 0.64), and
  // (0.5, 1) gives (E|w|^½)² / E|w| = Γ(3/4)² / √π (≈ 0.847) (ALGORITHMS.md §3.1).
  const auto w = gaussian(200000, 3);
  SapOptions o12;
  o12.p = 1;
  o12.q = 2;
  EXPECT_NEAR(pqi_keep_bound(200000, pq_index(w, 1, 2), o12) / 200000, 2 / std::numbers::pi, 0.005);
  const double half_one = std::tgamma(0.75) * std::tgamma(0.75) / std::sqrt(std::numbers::pi);
  EXPECT_NEAR(pqi_keep_bound(200000, pq_index(w), SapOptions{}) / 200000, half_one, 0.005);
}

TEST(Pqi, ZeroForConstantMagnitudes) {
  EXPECT_EQ(pq_index(std::vector<double>{2.5, 2.5, 2.5, 2.5}), 0.0);
  EXPECT_EQ(pq_index(std::vector<double>{-3, 3, 3, -3, 3}, 1, 2), 0.0);
  EXPECT_EQ(pq_index(std::vector<double>{0, 0, 0}), 0.0);  // nothing unmasked
  EXPECT_EQ(pq_index(std::vector<double>{}), 0.0);
}

TEST(Pqi, ScalingAndCloningInvariant) {
  const auto w = gaussian(257, 11);
  for (auto [p, q] : {std::pair{0.5, 1.0}, std::pair{1.0, 2.0}, std::pair{0.2, 1.0}}) {
    const double base = pq_index(w, p, q);
    std::vector<double> scaled, cloned = w;
    for (double x : w) scaled.push_back(-1234.5 * x);
    cloned.insert(cloned.end(), w.begin(), w.end());
    EXPECT_NEAR(pq_index(scaled, p, q), base, 1e-12);
    EXPECT_NEAR(pq_index(cloned, p, q), base, 1e-12);
    // Zeros are masked entries: d counts only the nonzero ones.
    std::vector<double> padded = w;
    padded.resize(w.size() + 50, 0.0);
    EXPECT_NEAR(pq_index(padded, p, q), base, 1e-12);
    // Range: 0 <= I <= 1 - d^{1/q - 1/p}.
    EXPECT_GT(base, 0.0);
    EXPECT_LE(base, 1 - std::pow(257.0, 1 / q - 1 / p));
  }
}

TEST(Pqi, SparserVectorsScoreHigher) {
  const std::vector<double> dense{1, 0.9, 1.1, 1}, peaked{1, 0.01, 0.01, 0.01};
  EXPECT_GT(pq_index(peaked), pq_index(dense));
  EXPECT_NEAR(pq_index(Tensor::from_vector(peaked, {2, 2})), pq_index(peaked), 1e-15);
}

TEST(Pqi, KeepAndPruneCountRule) {
  // w = [100, 1, 1, 1], (0.5, 1): r = 13^2 / 103 = 1.64 -> 2; c = floor(4 min(1 - 2/4, 0.9)) = 2.
  const std::vector<double> w{100, -1, 1, 1};
  PqiDecision dec = pqi_decide(w, SapOptions{});
  EXPECT_EQ(dec.d, 4);
  EXPECT_NEAR(dec.keep_bound, 169.0 / 103.0, 1e-12);
  EXPECT_EQ(dec.keep, 2);
  EXPECT_EQ(dec.prune, 2);
  SapOptions o;
  o.beta = 0.3;  // c = floor(4 * 0.3) = 1
  EXPECT_EQ(pqi_decide(w, o).prune, 1);
  o = {};
  o.gamma = 3;  // c = floor(4 * min(1.5, 0.9)) = 3
  EXPECT_EQ(pqi_decide(w, o).prune, 3);
  o = {};
  o.eta_r = 1;  // (1+1)^{-1/0.5} = 1/4: r = ceil(0.41) = 1, c = floor(4 * 0.75) = 3
  dec = pqi_decide(w, o);
  EXPECT_NEAR(dec.keep_bound, 169.0 / 103.0 / 4, 1e-12);
  EXPECT_EQ(dec.keep, 1);
  EXPECT_EQ(dec.prune, 3);
  // A flat vector keeps everything; r > d clamps the ratio at 0.
  EXPECT_EQ(pqi_decide(std::vector<double>{2, 2, 2}, SapOptions{}).prune, 0);
  EXPECT_EQ(pqi_prune_count(10, 12, SapOptions{}), 0);
  EXPECT_EQ(pqi_prune_count(0, 0, SapOptions{}), 0);
  // w = [4, 1, 1, 1, 1]: r = (2 + 4)^2 / 8 = 4.5 -> 5 = d, c = 0.
  EXPECT_EQ(pqi_decide(std::vector<double>{4, 1, 1, 1, 1}, SapOptions{}).prune, 0);
}

TEST(Pqi, RejectsBadExponents) {
  const std::vector<double> w{1, 2};
  EXPECT_THROW(pq_index(w, 1, 1), Error);
  EXPECT_THROW(pq_index(w, 0, 1), Error);
  EXPECT_THROW(pq_index(w, 2, 1), Error);
}
