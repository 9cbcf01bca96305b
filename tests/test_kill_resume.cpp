// The kill-and-resume test: a small training run is killed with SIGKILL at seeded random
// moments (during steps, saves, start-up), resumed each time with `--resume DIR` alone, and
// must end with the uninterrupted run's weights bit for bit. One kill waits for a state
// being written and strikes then. After every kill each saved
// state still loads and none was lost; every resume starts from the newest saved step (so
// it loses at most the steps since that checkpoint); no temporary file is left at the end.
// With SHRINK_RELIABILITY_OUT=DIR set, a JSON summary goes to DIR/kill_resume.json
// (scripts/reliability_report.py turns it into docs/reliability.md).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "nn/run_state.h"
#include "tests/generated_idx.h"
#include "tests/resume_helpers.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using shrink::testing::ScratchDir;

// Starts SHRINK_BIN_DIR/<args[0]> with stdout and stderr to `log`.
pid_t spawn(const std::string& command_line, const std::string& log) {
  std::vector<std::string> args;
  std::istringstream words(command_line);
  for (std::string w; words >> w;) args.push_back(w);
  args[0] = std::string(SHRINK_BIN_DIR) + "/" + args[0];
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) ::_exit(126);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid` at most `limit`; kills it with SIGKILL if it is still running then.
// Returns true when it was killed, false when it exited by itself (exit status in *status).
bool wait_or_kill(pid_t pid, std::chrono::duration<double> limit, int* status) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (::waitpid(pid, status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, status, 0);
  return WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Waits until the process has loaded its data and model (its log names the model's
// parameter count) or has exited; returns false in the second case (status in *status).
bool wait_until_training(pid_t pid, const std::string& log, int* status) {
  while (read_file(log).find(" params) on ") == std::string::npos) {
    if (::waitpid(pid, status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// The run step a resumed process said it starts from, or -1 (killed before saying it).
std::int64_t resumed_step(const std::string& log) {
  static const std::regex line(
      R"((?:resuming at epoch \d+, step \d+ of the epoch \(step (\d+) of the run\))|(?:finished its \d+ epochs \(step (\d+)\)))");
  std::smatch m;
  if (!std::regex_search(log, m, line)) return -1;
  return std::stoll(m[1].matched ? m[1].str() : m[2].str());
}

// Waits until a state is being written (a temporary folder exists in `states`) or the process
// has exited; returns false in the second case.
bool wait_until_saving(pid_t pid, const std::string& states, int* status) {
  for (;;) {
    if (::waitpid(pid, status, WNOHANG) == pid) return false;
    std::error_code ec;
    for (fs::directory_iterator it(states, ec), end; !ec && it != end; it.increment(ec))
      if (it->path().filename().string().find(".tmp.") != std::string::npos) return true;
  }
}

std::int64_t newest(const std::vector<std::int64_t>& indices) { return indices.empty() ? -1 : indices.back(); }

TEST(KillAndResume, ResumedRunsEndBitIdenticalAndLoseNoCheckpoint) {
  ScratchDir dir("kill-resume");
  const std::string data = shrink::testing::write_idx_dataset(dir.path(), 1536, 128, 12);
  constexpr int kCheckpointEvery = 7, kKills = 5, kSteps = 4 * 1536 / 32;
  const std::string run = "shrink-train --model mlp:784-192-64-2 --dropout 0.1 --data " + data +
                          " --epochs 4 --batch-size 32 --optimizer adamw --lr 0.002 --seed 21 --threads 1";
  const std::string states = dir / "states";

  // The uninterrupted run, its training part timed only to spread the kills over it.
  int status = 0;
  const pid_t reference = spawn(run + " --out " + (dir / "reference.safetensors"), dir / "reference.log");
  ASSERT_TRUE(wait_until_training(reference, dir / "reference.log", &status)) << read_file(dir / "reference.log");
  const auto start = Clock::now();
  ::waitpid(reference, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(dir / "reference.log");
  // Saving states adds to the reference's time: allow for it, so kills can reach the end.
  const double run_seconds = 1.5 * std::chrono::duration<double>(Clock::now() - start).count();

  const std::string fresh = run + " --checkpoint-dir " + states + " --checkpoint-every " +
                            std::to_string(kCheckpointEvery) + " --out " + (dir / "resumed.safetensors");
  const std::string resume = "shrink-train --resume " + states;
  shrink::Generator dice(2026);
  nlohmann::json resumes = nlohmann::json::array();
  int kills = 0, fresh_starts = 0, verified = 0, lost = 0;
  bool finished = false;
  for (int attempt = 0; attempt <= kKills && !finished; ++attempt) {
    const std::int64_t saved_before = newest(shrink::nn::run_state_indices(states));
    const bool resuming = saved_before >= 0;  // killed before its first save: the run starts over
    fresh_starts += !resuming;
    const std::string log = dir / ("attempt-" + std::to_string(attempt) + ".log");
    const pid_t pid = spawn(resuming ? resume : fresh, log);
    // The last attempt runs to the end; the others are killed at a random moment of what
    // is left of the training.
    const double left = 1.0 - static_cast<double>(std::max<std::int64_t>(saved_before, 0)) / kSteps;
    const double limit = attempt == kKills ? 600.0 : run_seconds * left * dice.next_double();
    // Attempt 2 is killed in the middle of writing a state, the others at a random moment.
    const bool during_save = attempt == 2;
    const bool killed = wait_until_training(pid, log, &status) &&
                        (during_save ? wait_until_saving(pid, states, &status) : true) &&
                        wait_or_kill(pid, std::chrono::duration<double>(during_save ? 0 : limit), &status);
    const std::string output = read_file(log);
    if (!killed) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
      finished = true;
    }
    kills += killed;
    // Every state the kill left loads, and the newest is no older than before this attempt.
    const std::vector<std::int64_t> indices = shrink::nn::run_state_indices(states);
    for (std::int64_t index : indices) {
      shrink::Generator gen(0);
      EXPECT_NO_THROW(shrink::nn::load_run_state(states, index, gen)) << "state " << index << " after attempt " << attempt;
      ++verified;
    }
    if (killed)
      std::printf("attempt %d killed %s; newest state: step %lld\n", attempt,
                  during_save ? "while writing a state" : ("after " + std::to_string(limit) + "s of training").c_str(),
                  static_cast<long long>(newest(indices)));
    if (newest(indices) < saved_before) ++lost;
    EXPECT_GE(newest(indices), saved_before) << "attempt " << attempt << " lost the newest checkpoint";
    if (resuming) {
      const std::int64_t from = resumed_step(output);
      if (from >= 0) {
        EXPECT_EQ(from, saved_before) << "resumed from an older state than the newest:\n" << output;
      }
      resumes.push_back({{"resumed_from_step", from}, {"newest_saved_step", saved_before},
                         {"steps_lost_at_most", kCheckpointEvery}, {"killed", killed},
                         {"killed_while_saving", killed && during_save}});
    }
  }
  ASSERT_TRUE(finished) << "the last resume did not finish";
  std::printf("training part of the reference run: %.3fs (x1.5)\n", run_seconds);
  const bool identical = static_cast<bool>(
      shrink::testing::same_weights(dir / "reference.safetensors", dir / "resumed.safetensors"));
  EXPECT_TRUE(identical) << "the killed and resumed run ended with other weights";
  const std::vector<std::string> temps = shrink::testing::temp_files_under(dir.path());
  EXPECT_TRUE(temps.empty()) << temps.size() << " temporary files left, e.g. " << temps.front();
  EXPECT_GE(kills, 1) << "no attempt was killed: the test proved nothing";

  if (const char* out = std::getenv("SHRINK_RELIABILITY_OUT")) {
    const nlohmann::json summary{{"test", "KillAndResume"}, {"tool", "shrink-train"},
                                 {"kills", kills}, {"resumes", resumes.size()}, {"fresh_starts", fresh_starts},
                                 {"checkpoint_every", kCheckpointEvery}, {"resume_details", resumes},
                                 {"checkpoints_verified_intact", verified}, {"checkpoints_lost", lost},
                                 {"temp_files_left", temps.size()}, {"bit_identical", identical}};
    std::filesystem::create_directories(out);
    std::ofstream(std::filesystem::path(out) / "kill_resume.json") << summary.dump(2) << "\n";
  }
}

}  // namespace
