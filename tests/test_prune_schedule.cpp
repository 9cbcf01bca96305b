// prune/schedule and prune/calibration: the prune -> fine-tune rounds shrink-prune runs,
// callable from C++: per-round targets compound to the overall one, calibration batches
// are seeded random subsets, fine-tuning runs the recipe on the caller's batches.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <stdexcept>

#include "core/ops.h"
#include "core/random.h"
#include "nn/batch_norm_recalibration.h"
#include "nn/flops.h"
#include "nn/models.h"
#include "prune/calibration.h"
#include "prune/schedule.h"
#include "tests/test_helpers.h"

namespace {

using namespace shrink;
using namespace shrink::prune;

using shrink::testing::error_of;

// Row i of the inputs is all i, label i % 4: a sample's row and label can be matched.
struct Data {
  Tensor inputs, labels;
};
Data numbered(std::int64_t n, std::int64_t features) {
  std::vector<float> x(static_cast<std::size_t>(n * features));
  std::vector<std::int64_t> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < features; ++j) x[static_cast<std::size_t>(i * features + j)] = static_cast<float>(i);
    y[static_cast<std::size_t>(i)] = i % 4;
  }
  return {Tensor::from_vector(x, {n, features}), Tensor::from_vector(y, {n})};
}

TEST(Calibration, SeededSubsetOfDistinctSamplesWithTheirLabels) {
  const Data d = numbered(50, 3);
  Generator a(7), b(7);
  const Calibration ca = sample_calibration(d.inputs, d.labels, 20, a, Device::cpu());
  const Calibration cb = sample_calibration(d.inputs, d.labels, 20, b, Device::cpu());
  ASSERT_EQ(ca.inputs.shape(), (Shape{20, 3}));
  EXPECT_EQ(ca.inputs.to_vector<float>(), cb.inputs.to_vector<float>());
  const auto x = ca.inputs.to_vector<float>();
  const auto y = ca.labels.to_vector<std::int64_t>();
  std::set<std::int64_t> rows;
  for (std::int64_t i = 0; i < 20; ++i) {
    const auto row = static_cast<std::int64_t>(x[static_cast<std::size_t>(3 * i)]);
    EXPECT_EQ(y[static_cast<std::size_t>(i)], row % 4);
    rows.insert(row);
  }
  EXPECT_EQ(rows.size(), 20u);
  EXPECT_NE(*rows.rbegin(), 19);  // not simply the first 20
  // Asking for more than the data holds gives all of it, in some order.
  Generator c(1);
  EXPECT_EQ(sample_calibration(d.inputs, d.labels, 1000, c, Device::cpu()).inputs.size(0), 50);
}

TEST(Calibration, BadArgumentsAreRefused) {
  const Data d = numbered(10, 2);
  Generator gen(0);
  EXPECT_NE(error_of([&] { sample_calibration(d.inputs, d.labels, 0, gen, Device::cpu()); }).find("positive"),
            std::string::npos);
  EXPECT_NE(error_of([&] { sample_calibration(d.inputs, slice(d.labels, 0, 0, 5), 3, gen, Device::cpu()); })
                .find("same N"),
            std::string::npos);
}

TEST(Schedule, RoundTargetsCompoundToTheOverallTarget) {
  // keep: k^(r/R) of the starting widths (GuardRails::reference).
  EXPECT_DOUBLE_EQ(round_target(TargetKind::Keep, 0.25, 1, 2, 1.0), 0.5);
  EXPECT_DOUBLE_EQ(round_target(TargetKind::Keep, 0.25, 2, 2, 0.3), 0.25);
  // params / FLOPs: f^(r/R) of the start, relative to where the model is now.
  EXPECT_DOUBLE_EQ(round_target(TargetKind::Params, 0.25, 1, 2, 1.0), 0.5);
  EXPECT_DOUBLE_EQ(round_target(TargetKind::Flops, 0.25, 2, 2, 0.52), 0.25 / 0.52);
  EXPECT_DOUBLE_EQ(round_target(TargetKind::Params, 0.25, 2, 2, 0.2), 1.0);  // already below: keep all
  EXPECT_NE(error_of([] { round_target(TargetKind::Keep, 0.5, 3, 2, 1.0); }).find("out of range"),
            std::string::npos);
}

struct Pipeline {
  std::shared_ptr<nn::Module> model;
  Data train;
};
Pipeline make_pipeline() {
  Generator gen(4);
  Pipeline s{nn::build_model("mlp:12-24-16-4", gen), {}};
  std::vector<std::int64_t> labels(96);
  for (auto& l : labels) l = static_cast<std::int64_t>(gen.next_below(4));
  s.train = {Tensor::randn({96, 12}, gen), Tensor::from_vector(labels, {96})};
  return s;
}

TEST(Schedule, RoundsReachTheParameterTargetOfTheStartingModel) {
  Pipeline s = make_pipeline();
  const double dense = static_cast<double>(s.model->num_parameters());
  ScheduleOptions o;
  o.prune.method = "magnitude";
  o.prune.target_kind = TargetKind::Params;
  o.prune.target = 0.3;
  o.rounds = 3;
  o.calib_samples = 32;
  Generator gen(9);
  const ScheduleReport r = prune_schedule(*s.model, s.train.inputs, s.train.labels, {12}, o, gen, Device::cpu());
  ASSERT_EQ(r.rounds.size(), 3u);
  EXPECT_DOUBLE_EQ(r.rounds[0].target, std::pow(0.3, 1.0 / 3));
  EXPECT_LE(static_cast<double>(s.model->num_parameters()), 0.3 * dense);
  EXPECT_GT(static_cast<double>(s.model->num_parameters()), 0.2 * dense);
  double seconds = 0;
  for (const ScheduleRound& round : r.rounds) {
    seconds += round.prune.seconds;
    EXPECT_TRUE(round.fine_tune.empty());
    EXPECT_LE(round.prune.groups[0].after, round.prune.groups[0].before);
  }
  EXPECT_DOUBLE_EQ(r.prune_seconds, seconds);
  EXPECT_LT(r.rounds[2].prune.groups[0].after, r.rounds[0].prune.groups[0].after);
}

// A keep target over many rounds lands on the one-shot widths: each round's fraction is of
// the widths the schedule started with. (Of the current widths, 0.5^(1/R) of a layer rounds
// back to its size every round once R is large: 1000 rounds pruned nothing, 20 rounds left
// LeNet-5's conv1 at 6 of 6 where one round keeps 3.) A schedule stopped after some round and
// resumed with the saved start widths (as shrink-prune --resume) ends at the same widths.
TEST(Schedule, ManyKeepRoundsReachTheOneShotWidths) {
  const Shape sample{1, 28, 28};
  Generator data_gen(3);
  const Tensor inputs = Tensor::uniform({64, 1, 28, 28}, 0.0, 1.0, data_gen);
  const Tensor labels = Tensor::zeros({64}, DType::Int64);
  const auto widths_after = [&](int rounds, int stop_after) {
    Generator init(5);
    auto model = nn::build_model("lenet5", init);
    ScheduleOptions o;
    o.prune.method = "magnitude";
    o.prune.target = 0.5;
    o.rounds = rounds;
    o.calib_samples = 16;
    o.widths_start = start_widths(*model, sample, o.prune);
    o.params_start = static_cast<double>(model->num_parameters());
    o.flops_start = static_cast<double>(nn::flops_per_sample(*model, sample));
    Generator gen(9);
    if (stop_after > 0) {
      ScheduleProgress stop;
      stop.round_finished = [&](int round, const ScheduleRound&) {
        if (round == stop_after) throw std::runtime_error("stopped");
      };
      EXPECT_THROW(prune_schedule(*model, inputs, labels, sample, o, gen, Device::cpu(), {}, stop),
                   std::runtime_error);
      o.first_round = stop_after + 1;
    }
    prune_schedule(*model, inputs, labels, sample, o, gen, Device::cpu());
    return start_widths(*model, sample, o.prune);
  };
  const KeepCounts one_shot = widths_after(1, 0);
  EXPECT_EQ(one_shot.at("conv1"), 3);
  EXPECT_EQ(one_shot.at("conv2"), 8);
  EXPECT_EQ(widths_after(20, 0), one_shot);
  EXPECT_EQ(widths_after(200, 0), one_shot);
  EXPECT_EQ(widths_after(50, 17), one_shot);
}

TEST(Schedule, SameSeedSameResult) {
  std::vector<std::int64_t> widths[2];
  for (auto& w : widths) {
    Pipeline s = make_pipeline();
    ScheduleOptions o;
    o.prune.method = "random";
    o.prune.target = 0.25;
    o.rounds = 2;
    o.calib_samples = 16;
    o.seed = 3;
    Generator gen(5);
    const ScheduleReport r = prune_schedule(*s.model, s.train.inputs, s.train.labels, {12}, o, gen, Device::cpu());
    for (const GroupChange& g : r.rounds.back().prune.groups) w.push_back(g.after);
    EXPECT_EQ(w, (std::vector<std::int64_t>{6, 4}));  // 0.25 of 24 and 16, in two rounds of 0.5
  }
}

TEST(Schedule, FineTunesEachRoundOnTheCallersBatchesWithProgress) {
  Pipeline s = make_pipeline();
  ScheduleOptions o;
  o.prune.method = "magnitude";
  o.prune.target = 0.5;
  o.rounds = 2;
  o.calib_samples = 32;
  o.fine_tune.epochs = 2;
  std::vector<std::pair<int, int>> requested;
  const FineTuneData data = [&](int round, int epoch) {
    requested.emplace_back(round, epoch);
    auto served = std::make_shared<std::int64_t>(0);
    nn::BatchSource source = [&s, served]() -> std::optional<nn::LabeledBatch> {
      if (*served >= 96) return std::nullopt;
      const std::int64_t start = *served;
      *served += 32;
      return nn::LabeledBatch{slice(s.train.inputs, 0, start, start + 32), slice(s.train.labels, 0, start, start + 32)};
    };
    return EpochBatches{source, 3};
  };
  int pruned = 0, started = 0, steps = 0, finished = 0;
  ScheduleProgress progress;
  progress.pruned = [&](int, const PruneReport&) { ++pruned; };
  progress.epoch_started = [&](int, int epoch, std::int64_t n) {
    ++started;
    EXPECT_GE(epoch, 1);
    EXPECT_EQ(n, 3);
  };
  progress.step = [&](std::int64_t, const nn::EpochResult&) { ++steps; };
  progress.epoch_finished = [&](int, int, const nn::EpochResult& r) {
    ++finished;
    EXPECT_EQ(r.samples, 96);
  };
  Generator gen(2);
  const ScheduleReport r =
      prune_schedule(*s.model, s.train.inputs, s.train.labels, {12}, o, gen, Device::cpu(), data, progress);
  ASSERT_EQ(r.rounds.size(), 2u);
  for (const ScheduleRound& round : r.rounds) {
    ASSERT_EQ(round.fine_tune.size(), 2u);
    for (const nn::EpochResult& e : round.fine_tune) EXPECT_TRUE(std::isfinite(e.loss));
  }
  EXPECT_EQ(requested, (std::vector<std::pair<int, int>>{{1, 0}, {1, 1}, {2, 0}, {2, 1}}));
  EXPECT_EQ(pruned, 2);
  EXPECT_EQ(started, 4);
  EXPECT_EQ(finished, 4);
  EXPECT_EQ(steps, 12);
}

// i-SpaSP's per-block fine-tune: after each group's cut, block_steps steps on batches of an
// epoch of the block's own, before the next group is chosen.
TEST(Schedule, BlockFineTuneRunsItsStepsAfterEachCut) {
  Pipeline s = make_pipeline();
  ScheduleOptions o;
  o.prune.method = "ispasp";
  o.prune.target = 0.5;
  o.prune.ispasp_iterations = 2;
  o.calib_samples = 32;
  o.fine_tune.block_steps = 2;
  std::vector<std::pair<int, int>> requested;
  std::int64_t served_total = 0;
  const FineTuneData data = [&](int round, int epoch) {
    requested.emplace_back(round, epoch);
    nn::BatchSource source = [&]() -> std::optional<nn::LabeledBatch> {
      ++served_total;
      return nn::LabeledBatch{slice(s.train.inputs, 0, 0, 16), slice(s.train.labels, 0, 0, 16)};
    };
    return EpochBatches{source, 100};
  };
  const std::string last = s.model->named_parameters().back().first;
  const std::vector<float> before = s.model->parameter(last).to_vector<float>();
  const auto groups = build_groups(*s.model);
  Generator gen(2);
  prune_schedule(*s.model, s.train.inputs, s.train.labels, {12}, o, gen, Device::cpu(), data, {});
  std::vector<std::pair<int, int>> expected;
  for (std::size_t g = 0; g < groups.size(); ++g) expected.emplace_back(1, 1001 + static_cast<int>(g));
  EXPECT_EQ(requested, expected);
  EXPECT_EQ(served_total, 2 * static_cast<std::int64_t>(groups.size()));
  // The last layer was trained (its bias is never cut): the steps really ran.
  EXPECT_NE(s.model->parameter(last).to_vector<float>(), before);
}

TEST(Schedule, FineTuningWithoutBatchesAndBadRoundsAreRefused) {
  Pipeline s = make_pipeline();
  ScheduleOptions o;
  o.prune.method = "magnitude";
  o.fine_tune.epochs = 1;
  Generator gen(0);
  EXPECT_NE(error_of([&] { prune_schedule(*s.model, s.train.inputs, s.train.labels, {12}, o, gen, Device::cpu()); })
                .find("FineTuneData"),
            std::string::npos);
  o.fine_tune.epochs = 0;
  o.rounds = 0;
  EXPECT_NE(error_of([&] { prune_schedule(*s.model, s.train.inputs, s.train.labels, {12}, o, gen, Device::cpu()); })
                .find("rounds"),
            std::string::npos);
}

}  // namespace

namespace {

// The BatchNorms' running statistics, in module order.
std::vector<std::vector<float>> running_stats(nn::Module& model) {
  std::vector<std::vector<float>> out;
  for (auto& [name, t] : model.named_buffers())
    if (name.ends_with("running_mean") || name.ends_with("running_var")) out.push_back(t.to_vector<float>());
  return out;
}

TEST(Schedule, RecalibratesTheBatchNormsOfTheCutModelOnItsCalibrationBatch) {
  // The same cut twice (same seeds), once with recalibrate_bn: its statistics are those that
  // nn::recalibrate_batch_norm gives the plain cut on the round's calibration batch, which
  // the generator's same state draws again; the plain cut keeps the dense ones.
  Generator init(12);
  auto dense = nn::build_model("resnet20:in_channels=1,input_size=8", init);
  Generator data_gen(13);
  const Tensor inputs = Tensor::randn({40, 1, 8, 8}, data_gen);
  const Tensor labels = Tensor::from_vector(std::vector<std::int64_t>(40, 3), {40});
  ScheduleOptions o;
  o.prune.method = "magnitude";
  o.prune.target = 0.5;
  o.calib_samples = 24;
  std::shared_ptr<nn::Module> cut[2];
  for (int recalibrate = 0; recalibrate < 2; ++recalibrate) {
    Generator copy_gen(0);
    cut[recalibrate] = nn::build_model("resnet20:in_channels=1,input_size=8", copy_gen);
    cut[recalibrate]->load_state_dict(dense->state_dict());
    o.recalibrate_bn = recalibrate == 1;
    Generator gen(14);
    const ScheduleReport r = prune_schedule(*cut[recalibrate], inputs, labels, {1, 8, 8}, o, gen, Device::cpu());
    EXPECT_EQ(r.rounds.back().recalibrated_batch_norms, recalibrate == 1 ? 21 : 0);  // stem, 2 a block, 2 projections
  }
  const auto dense_stats = running_stats(*dense), plain_stats = running_stats(*cut[0]);
  ASSERT_EQ(plain_stats.size(), 42u);
  // Block-inner BNs were sliced (their kept entries are the dense ones); the others untouched.
  EXPECT_EQ(plain_stats.front(), dense_stats.front());
  Generator gen(14);
  const Calibration calib = sample_calibration(inputs, labels, o.calib_samples, gen, Device::cpu());
  EXPECT_EQ(nn::recalibrate_batch_norm(*cut[0], calib.inputs), 21);
  EXPECT_EQ(running_stats(*cut[0]), running_stats(*cut[1]));
  EXPECT_NE(running_stats(*cut[1]).front(), dense_stats.front());
}

}  // namespace
