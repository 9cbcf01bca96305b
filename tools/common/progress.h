// Epoch progress for the binaries: a live bar on a terminal (loss, accuracy, samples/s,
// ETA), nothing while running otherwise (the caller prints one line per epoch).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace shrink::tools {

class ProgressBar {
 public:
  // `enabled` is usually stderr_is_terminal(); a disabled bar prints nothing.
  ProgressBar(std::string label, std::int64_t total_steps, bool enabled);
  // Called after each step with the running means so far and samples processed.
  void update(std::int64_t step, double loss, double accuracy, std::int64_t samples);
  void finish();  // clears the bar line

 private:
  std::string label_;
  std::int64_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

bool stderr_is_terminal();

// "1h02m", "3m07s", "12s"
std::string format_duration(double seconds);
// "1.23M", "45.6k", "789"
std::string format_count(double value);

}  // namespace shrink::tools
