// Resuming a run: the optimizer, dropout streams and epoch tally survive a save/load and
// continue bit-identically; the loader resumes mid-epoch; the state folder keeps the newest
// K states, falls back past a corrupt one and names the folder when none loads; stale
// temporary files of dead writers are removed, a live writer's never.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/random.h"
#include "core/safetensors.h"
#include "core/stale_temp.h"
#include "datasets/loader.h"
#include "nn/models.h"
#include "nn/run_state.h"
#include "nn/train_state.h"
#include "nn/training.h"
#include "tests/test_helpers.h"

namespace {

namespace fs = std::filesystem;
using namespace shrink;
using shrink::testing::error_of;

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("shrink-state-" + std::to_string(::getpid()) + "-" +
                                                  std::to_string(counter_++))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::shared_ptr<nn::Module> small_mlp(Generator& gen) {
  nlohmann::json spec = nn::parse_model_text("mlp:12-16-8-3");
  spec["dropout"] = 0.3;
  return nn::build_from_spec(spec, gen);
}

// Six fixed batches of 5 samples; `from` skips the first ones.
nn::BatchSource batches(std::int64_t from = 0) {
  auto next = std::make_shared<std::int64_t>(from);
  return [next]() -> std::optional<nn::LabeledBatch> {
    if (*next >= 6) return std::nullopt;
    Generator g(100 + static_cast<std::uint64_t>((*next)++));
    Tensor y = Tensor::empty({5}, DType::Int64);
    for (int i = 0; i < 5; ++i) y.data<std::int64_t>()[i] = static_cast<std::int64_t>(g.next_below(3));
    return nn::LabeledBatch{Tensor::randn({5, 12}, g), y};
  };
}

std::unique_ptr<nn::Optimizer> make(const std::string& type, nn::Module& m) {
  if (type == "sgd") return std::make_unique<nn::SGD>(m.named_parameters(), 0.05, 0.9, 0.0, 1e-4, true);
  return std::make_unique<nn::AdamW>(m.named_parameters(), 0.01, 0.9, 0.999, 1e-8, 0.01);
}

void expect_bitwise_equal(const nn::Module& a, const nn::Module& b) {
  const nn::StateDict sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [name, t] : sa) {
    const Tensor& u = sb.at(name);
    ASSERT_EQ(t.shape(), u.shape()) << name;
    EXPECT_EQ(std::memcmp(t.raw_data(), u.raw_data(), t.numel() * dtype_size(t.dtype())), 0)
        << name << " differs after the resume";
  }
}

class ResumeOptimizer : public ::testing::TestWithParam<std::string> {};

// Three steps, save, three more steps; against: load the saved state into a fresh model
// and optimizer and take the same three steps.
TEST_P(ResumeOptimizer, ContinuesBitIdentically) {
  TempDir dir;
  Generator gen(11);
  auto model = small_mlp(gen);
  auto opt = make(GetParam(), *model);
  nn::EpochTally tally;
  nn::train_epoch(*model, *opt, [src = batches(), n = 0]() mutable {
    return n++ < 3 ? src() : std::nullopt;
  }, Device::cpu(), 0.1, {}, &tally);
  ASSERT_EQ(tally.steps, 3);
  const nlohmann::json state{{"optimizer", nn::optimizer_scalars(*opt)},
                             {"dropout", nn::dropout_streams(*model)},
                             {"tally", nn::tally_json(tally)}};
  nn::save_run_state(dir.path().string(), 3, *model, nn::optimizer_state_tensors(*opt), state, 2);
  nn::EpochTally uninterrupted_tally = tally;
  const nn::EpochResult uninterrupted =
      nn::train_epoch(*model, *opt, batches(3), Device::cpu(), 0.1, {}, &uninterrupted_tally);

  Generator other(999);  // the loaded model's own streams must not matter
  nn::LoadedRunState loaded = nn::load_latest_run_state(dir.path().string(), other);
  EXPECT_TRUE(loaded.skipped.empty());
  nn::Module& resumed = *loaded.checkpoint.model;
  auto resumed_opt = make(GetParam(), resumed);
  nn::restore_optimizer(*resumed_opt, loaded.tensors, loaded.state.at("optimizer"), loaded.path);
  nn::restore_dropout_streams(resumed, loaded.state.at("dropout"), loaded.path);
  nn::EpochTally resumed_tally = nn::tally_from_json(loaded.state.at("tally"), "tally");
  const nn::EpochResult continued =
      nn::train_epoch(resumed, *resumed_opt, batches(3), Device::cpu(), 0.1, {}, &resumed_tally);

  expect_bitwise_equal(*model, resumed);
  EXPECT_EQ(resumed_tally.steps, 6);
  EXPECT_EQ(continued.loss, uninterrupted.loss);  // exact: the sums were carried, not the means
  EXPECT_EQ(continued.accuracy, uninterrupted.accuracy);
  if (auto* adam = dynamic_cast<nn::AdamW*>(resumed_opt.get())) {
    EXPECT_EQ(adam->step_count("1.weight"), 6);
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, ResumeOptimizer, ::testing::Values("sgd", "adamw"));

TEST(ResumeOptimizerErrors, MismatchesNameTheFile) {
  Generator gen(1);
  auto model = small_mlp(gen);
  nn::SGD sgd(model->named_parameters(), 0.1, 0.9);
  nn::AdamW adam(model->named_parameters(), 0.1);
  const nlohmann::json sgd_scalars = nn::optimizer_scalars(sgd);
  EXPECT_NE(error_of([&] { nn::restore_optimizer(adam, {}, sgd_scalars, "f.safetensors"); }).find("f.safetensors"),
            std::string::npos);
  const std::map<std::string, Tensor> wrong_shape{{"optim/1.weight/momentum_buffer", Tensor::zeros({2, 2})}};
  EXPECT_NE(error_of([&] { nn::restore_optimizer(sgd, wrong_shape, sgd_scalars, "f"); }).find("1.weight"),
            std::string::npos);
  const std::map<std::string, Tensor> unknown{{"optim/9.weight/momentum_buffer", Tensor::zeros({2})}};
  EXPECT_NE(error_of([&] { nn::restore_optimizer(sgd, unknown, sgd_scalars, "f"); }).find("9.weight"),
            std::string::npos);
  EXPECT_NE(error_of([&] { nn::restore_dropout_streams(*model, nlohmann::json::object(), "f"); }).find("Dropout"),
            std::string::npos);
}

TEST(LoaderResume, FirstBatchSkipsExactly) {
  const std::int64_t n = 23;
  datasets::Split split{Tensor::arange(n, DType::Float32), Tensor::arange(n)};
  auto collect = [&](std::int64_t epoch, std::int64_t first) {
    datasets::DataLoader loader(split, 4, true, 9);
    loader.set_transform([](datasets::Batch& b, Generator& g) {  // the transform's stream follows the batch
      b.images.data<float>()[0] += static_cast<float>(g.next_below(1000)) * 1000;
    });
    loader.start_epoch(epoch, first);
    std::vector<float> out;
    while (auto b = loader.next())
      for (std::int64_t i = 0; i < b->images.numel(); ++i) out.push_back(b->images.data<float>()[i]);
    return out;
  };
  const std::vector<float> whole = collect(2, 0);
  ASSERT_EQ(whole.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(collect(2, 2), std::vector<float>(whole.begin() + 8, whole.end()));
  EXPECT_TRUE(collect(2, 6).empty());  // 6 batches: resuming at the end yields none
  datasets::DataLoader loader(split, 4, true, 9);
  EXPECT_NE(error_of([&] { loader.start_epoch(0, 7); }).find("first_batch"), std::string::npos);
}

TEST(RunStateFolder, KeepsTheNewestAndFallsBackPastACorruptOne) {
  TempDir dir;
  Generator gen(3);
  auto model = small_mlp(gen);
  for (int i = 1; i <= 5; ++i)
    nn::save_run_state(dir.path().string(), i * 10, *model, {}, {{"i", i}}, 2);
  EXPECT_EQ(nn::run_state_indices(dir.path().string()), (std::vector<std::int64_t>{40, 50}));

  // Truncate the newest state file: the previous state loads, and the skip names the folder.
  const fs::path newest = dir.path() / "state-000000000050" / "state.safetensors";
  fs::resize_file(newest, fs::file_size(newest) / 2);
  Generator g(0);
  nn::LoadedRunState loaded = nn::load_latest_run_state(dir.path().string(), g);
  EXPECT_EQ(loaded.index, 40);
  EXPECT_EQ(loaded.state.at("i"), 4);
  ASSERT_EQ(loaded.skipped.size(), 1u);
  EXPECT_NE(loaded.skipped[0].find("state-000000000050"), std::string::npos) << loaded.skipped[0];

  // A corrupt model file counts too; with none loadable the error names the folder.
  const fs::path model40 = dir.path() / "state-000000000040" / "model.safetensors";
  std::ofstream(model40, std::ios::trunc) << "garbage";
  const std::string error = error_of([&] { nn::load_latest_run_state(dir.path().string(), g); });
  EXPECT_NE(error.find(dir.path().string()), std::string::npos) << error;
  EXPECT_NE(error.find("state-000000000040"), std::string::npos) << error;

  TempDir empty;
  EXPECT_NE(error_of([&] { nn::load_latest_run_state(empty.path().string(), g); }).find("no saved state"),
            std::string::npos);
}

// A child that has exited (and been reaped) is a pid no process holds, until reused.
long dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

TEST(StaleTemps, TheWriterRemovesDeadWritersTempsOnly) {
  TempDir dir;
  const pid_t live = ::fork();
  if (live == 0) {
    ::pause();
    ::_exit(0);
  }
  const long dead = dead_pid();
  ASSERT_TRUE(process_is_gone(dead));
  ASSERT_FALSE(process_is_gone(live));
  const fs::path target = dir.path() / "m.safetensors";
  const fs::path stale = target.string() + ".tmp." + std::to_string(dead);
  const fs::path live_temp = target.string() + ".tmp." + std::to_string(live);
  const fs::path other = (dir.path() / "other.safetensors").string() + ".tmp." + std::to_string(dead);
  for (const auto& p : {stale, live_temp, other}) std::ofstream(p) << "partial";

  save_safetensors(target.string(), {{"x", Tensor::ones({2})}});
  EXPECT_FALSE(fs::exists(stale)) << "a dead writer's temp file of the same path must go";
  EXPECT_TRUE(fs::exists(live_temp)) << "a live process's temp file must stay";
  EXPECT_TRUE(fs::exists(other)) << "another path's temp file is not this write's business";
  ::kill(live, SIGKILL);
  ::waitpid(live, nullptr, 0);

  // A folder-wide sweep (what a resume does) takes the rest, folders included.
  const fs::path stale_folder = (dir.path() / "state-000000000007").string() + ".tmp." + std::to_string(dead_pid());
  fs::create_directories(stale_folder / "inner");
  const auto removed = remove_stale_temps_in(dir.path().string());
  EXPECT_FALSE(fs::exists(other));
  EXPECT_FALSE(fs::exists(live_temp));  // its writer is gone now
  EXPECT_FALSE(fs::exists(stale_folder));
  EXPECT_EQ(removed.size(), 3u);
  EXPECT_TRUE(fs::exists(target));
}

}  // namespace
