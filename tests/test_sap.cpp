// prune/sap: structured SAP (PQI over unit norms) shrinks groups physically; unstructured
// SAP / LT / OS rounds remove exactly c entries per scope unit into SparseLinear (CSR)
// layers, and rewind restores the initial values of the survivors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/shrink.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/sparse_linear.h"
#include "prune/group.h"
#include "prune/pruner.h"
#include "prune/sap.h"

using namespace shrink;
using namespace shrink::prune;

namespace {

std::shared_ptr<nn::Sequential> small_mlp(std::uint64_t seed) {
  Generator gen(seed);
  return nn::build_mlp({20, 16, 12, 5}, "relu", true, gen);
}

// Dense weight of layer `name` (a Linear, or a SparseLinear expanded with zeros).
std::vector<double> dense_weight(const nn::Module& model, const std::string& name) {
  const auto& m = *model.child(name);
  if (const auto* s = dynamic_cast<const nn::SparseLinear*>(&m))
    return s->to_dense().to(DType::Float64).to_vector<double>();
  return dynamic_cast<const nn::Linear&>(m).weight().to(DType::Float64).to_vector<double>();
}

nn::StateDict snapshot(const nn::Module& model) {
  nn::StateDict out;
  for (auto& [k, v] : model.state_dict()) out[k] = v.detach().clone();
  return out;
}

const std::vector<std::string> kLayers{"1", "3", "5"};

}  // namespace

TEST(StructuredSap, KeepsAtLeastOneUnitAndShrinksPhysically) {
  auto model = small_mlp(1);
  auto groups = build_groups(*model);
  ASSERT_EQ(groups.size(), 2u);
  const std::int64_t params_before = model->num_parameters();
  // Skew unit norms of the first group so the PQI is large.
  {
    NoGradGuard ng;
    Tensor w = model->parameter("1.weight");
    float* d = w.data<float>();
    for (std::int64_t u = 4; u < 16; ++u)
      for (std::int64_t i = 0; i < 20; ++i) d[u * 20 + i] *= 0.01f;
  }
  const auto decisions = sap_structured_decide(*model, groups);
  const auto keep = sap_structured_keep(*model, groups);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const auto norms = unit_norms(*model, groups[i]);
    const PqiDecision expect = pqi_decide(norms, SapOptions{});
    EXPECT_EQ(decisions[i].pqi.prune, expect.prune);
    EXPECT_EQ(keep.at(groups[i].name), std::max<std::int64_t>(1, groups[i].size - expect.prune));
  }
  EXPECT_LT(keep.at("1"), 16);
  const auto pqi = sap_structured_prune(*model, groups);
  EXPECT_GT(pqi.at("1"), pqi.at("3"));
  const auto& l1 = dynamic_cast<const nn::Linear&>(*model->child("1"));
  const auto& l3 = dynamic_cast<const nn::Linear&>(*model->child("3"));
  EXPECT_EQ(l1.out_features(), keep.at("1"));
  EXPECT_EQ(l3.in_features(), keep.at("1"));
  EXPECT_EQ(l3.out_features(), keep.at("3"));
  EXPECT_LT(model->num_parameters(), params_before);
  EXPECT_EQ((*model)(Tensor::ones({2, 20})).shape(), (Shape{2, 5}));

  // An extreme rule (beta near 1, large gamma) still leaves one unit per group.
  SapOptions harsh;
  harsh.gamma = 100;
  harsh.beta = 0.999;
  for (int round = 0; round < 4; ++round) sap_structured_prune(*model, groups, harsh);
  for (const Group& g : groups) EXPECT_GE(g.size, 1);
  EXPECT_EQ((*model)(Tensor::ones({2, 20})).shape(), (Shape{2, 5}));
}

TEST(StructuredSap, FlatNormsKeepEveryUnit) {
  auto model = small_mlp(2);
  {
    NoGradGuard ng;
    model->parameter("1.weight").fill_(0.3);
  }
  auto groups = build_groups(*model);
  EXPECT_EQ(sap_structured_keep(*model, groups).at("1"), 16);
}

// prune_model's "sap" decides its own counts: with no target it equals
// sap_structured_keep; a keep, parameter or FLOP target is refused (not ignored).
TEST(StructuredSap, PruneModelDecidesItsOwnCountsAndRefusesATarget) {
  auto model = small_mlp(1);
  {
    NoGradGuard ng;
    float* d = model->parameter("1.weight").data<float>();
    for (std::int64_t u = 4; u < 16; ++u)
      for (std::int64_t i = 0; i < 20; ++i) d[u * 20 + i] *= 0.01f;
  }
  const auto expected = sap_structured_keep(*model, build_groups(*model));
  PruneOptions options;
  options.method = "sap";
  for (TargetKind target : {TargetKind::Keep, TargetKind::Params, TargetKind::Flops}) {
    options.target_kind = target;
    options.target = 0.1;
    try {
      prune_model(*model, {}, options, {20});
      FAIL() << "sap took a " << target_name(target) << " target";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("'sap' does not accept a " + std::string(target_name(target)) + " target"),
                std::string::npos) << m;
      EXPECT_NE(m.find("decides its own counts"), std::string::npos) << m;
    }
  }
  options.target_kind = TargetKind::None;
  const PruneReport report = prune_model(*model, {}, options, {20});
  ASSERT_EQ(report.groups.size(), 2u);
  for (const GroupChange& g : report.groups) EXPECT_EQ(g.after, expected.at(g.name)) << g.name;
  EXPECT_LT(report.groups[0].after, 16);
}

TEST(UnstructuredSap, RoundRemovesTheComputedCountPerScope) {
  for (Scope scope : {Scope::Global, Scope::Layer, Scope::Neuron}) {
    auto model = small_mlp(3);
    SapOptions opts;
    // Expected c per scope unit, from the weights before the round.
    std::vector<std::vector<double>> units;
    std::vector<double> all;
    for (const auto& name : kLayers) {
      const auto w = dense_weight(*model, name);
      all.insert(all.end(), w.begin(), w.end());
      if (scope == Scope::Layer) units.push_back(w);
      if (scope == Scope::Neuron) {
        const std::int64_t in = dynamic_cast<const nn::Linear&>(*model->child(name)).in_features();
        for (std::size_t r = 0; r < w.size() / in; ++r)
          units.emplace_back(w.begin() + r * in, w.begin() + (r + 1) * in);
      }
    }
    if (scope == Scope::Global) units.push_back(all);
    std::int64_t total_c = 0;
    std::vector<std::int64_t> expected_c;
    for (const auto& u : units) expected_c.push_back(pqi_decide(u, opts).prune), total_c += expected_c.back();

    const std::int64_t before = remaining_weights(*model);
    const RoundReport rep = sap_unstructured_round(*model, {}, scope, opts);
    ASSERT_EQ(rep.scopes.size(), units.size()) << scope_name(scope);
    for (std::size_t i = 0; i < units.size(); ++i) {
      EXPECT_EQ(rep.scopes[i].prune, expected_c[i]) << scope_name(scope) << " " << rep.scopes[i].name;
      EXPECT_EQ(rep.scopes[i].removed, expected_c[i]) << scope_name(scope) << " " << rep.scopes[i].name;
      EXPECT_NEAR(rep.scopes[i].pqi, pq_index(units[i]), 1e-12);
    }
    EXPECT_GT(total_c, 0);
    EXPECT_EQ(rep.remaining_before, before);
    EXPECT_EQ(rep.remaining, before - total_c);
    EXPECT_EQ(remaining_weights(*model), before - total_c);
    for (const auto& name : kLayers) {
      const auto& s = dynamic_cast<const nn::SparseLinear&>(*model->child(name));
      EXPECT_EQ(rep.layer_remaining.at(name), s.nnz());
    }
    // Survivors are exactly the entries with |w| >= thr (global scope: one threshold).
    if (scope == Scope::Global) {
      const double thr = rep.scopes[0].threshold;
      std::int64_t expect_nnz = 0;
      for (double w : all) expect_nnz += std::abs(w) >= thr;
      EXPECT_EQ(rep.remaining, expect_nnz);
    }
    // Physically smaller: parameters count only the stored values (+ biases).
    EXPECT_EQ(model->num_parameters(), rep.remaining + 16 + 12 + 5);

    // A further round prunes the SparseLinear layers again: a smaller CSR.
    const RoundReport again = sap_unstructured_round(*model, {}, scope, opts);
    EXPECT_EQ(again.remaining_before, rep.remaining);
    EXPECT_LT(again.remaining, rep.remaining);
    std::int64_t c2 = 0;
    for (const auto& s : again.scopes) c2 += s.removed;
    EXPECT_EQ(again.remaining, rep.remaining - c2);
  }
}

TEST(UnstructuredSap, PrunedModelEqualsTheMaskedDenseModel) {
  auto model = small_mlp(4);
  auto masked = small_mlp(4);
  sap_unstructured_round(*model, {}, Scope::Layer);
  for (const auto& name : kLayers) {
    const auto& s = dynamic_cast<const nn::SparseLinear&>(*model->child(name));
    masked->set_child(name, std::make_shared<nn::Linear>(s.to_dense(), s.bias().detach().clone()));
  }
  Generator gen(8);
  Tensor x = Tensor::uniform({7, 20}, -1, 1, gen);
  const auto a = (*model)(x).to_vector<float>(), b = (*masked)(x).to_vector<float>();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5);
}

TEST(UnstructuredSap, RewindRestoresInitialValues) {
  auto model = small_mlp(5);
  const nn::StateDict init = snapshot(*model);
  {  // "train": move every weight and bias away from init
    NoGradGuard ng;
    for (auto& [name, p] : model->named_parameters()) {
      Tensor t = p;
      t.copy_(p * 1.7 + 0.01);
    }
  }
  const auto trained = dense_weight(*model, "3");
  sap_unstructured_round(*model, init, Scope::Neuron);
  const auto w_init = init.at("3.weight").to(DType::Float64).to_vector<double>();
  const auto& s = dynamic_cast<const nn::SparseLinear&>(*model->child("3"));
  const auto v = s.values().to(DType::Float64).to_vector<double>();
  const auto rows = s.entry_rows();
  const auto cols = s.col_idx().to_vector<std::int64_t>();
  for (std::size_t e = 0; e < v.size(); ++e) EXPECT_EQ(v[e], w_init[rows[e] * 16 + cols[e]]);
  // The kept set was chosen by the trained magnitudes, not the initial ones.
  EXPECT_NE(v[0], trained[rows[0] * 16 + cols[0]]);
  const auto b = s.bias().to_vector<float>(), b_init = init.at("3.bias").to_vector<float>();
  EXPECT_EQ(b, b_init);
}

TEST(Baselines, LotteryRemovesTheFractionOfRemaining) {
  auto model = small_mlp(6);
  const nn::StateDict init = snapshot(*model);
  std::int64_t remaining = remaining_weights(*model);
  for (int round = 0; round < 3; ++round) {
    const RoundReport rep = lottery_round(*model, init, Scope::Layer, 0.2);
    std::int64_t expect = 0;
    for (const auto& s : rep.scopes) {
      EXPECT_EQ(s.prune, static_cast<std::int64_t>(std::floor(0.2 * static_cast<double>(s.d))));
      EXPECT_EQ(s.removed, s.prune);
      expect += s.d - s.prune;
    }
    EXPECT_EQ(rep.remaining, expect);
    EXPECT_LT(rep.remaining, remaining);
    remaining = rep.remaining;
  }
}

TEST(Baselines, OneShotFollowsTheReferenceRanking) {
  auto model = small_mlp(7);
  const nn::StateDict init = snapshot(*model);
  const nn::StateDict reference = snapshot(*small_mlp(70));  // "first dense trained model"
  one_shot_mask_round(*model, init, reference, Scope::Global, 0.2);
  one_shot_mask_round(*model, init, reference, Scope::Global, 0.2);
  // After two rounds: the ~64% largest entries of the reference survive, a nested set.
  std::vector<double> ref_all;
  for (const auto& name : kLayers) {
    const auto w = reference.at(name + ".weight").to(DType::Float64).to_vector<double>();
    for (double x : w) ref_all.push_back(std::abs(x));
  }
  const std::int64_t d = static_cast<std::int64_t>(ref_all.size());
  const std::int64_t c1 = d / 5, c2 = (d - c1) / 5;
  EXPECT_EQ(remaining_weights(*model), d - c1 - c2);
  std::sort(ref_all.begin(), ref_all.end());
  const double thr = ref_all[static_cast<std::size_t>(c1 + c2)];
  for (const auto& name : kLayers) {
    const auto& s = dynamic_cast<const nn::SparseLinear&>(*model->child(name));
    const auto ref = reference.at(name + ".weight").to(DType::Float64).to_vector<double>();
    const auto rows = s.entry_rows();
    const auto cols = s.col_idx().to_vector<std::int64_t>();
    for (std::size_t e = 0; e < rows.size(); ++e)
      EXPECT_GE(std::abs(ref[rows[e] * s.in_features() + cols[e]]), thr);
  }
}
