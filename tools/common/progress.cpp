#include "tools/common/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace shrink::tools {

bool stderr_is_terminal() { return isatty(fileno(stderr)) != 0; }

std::string format_duration(double seconds) {
  char buf[32];
  const long s = std::lround(seconds);
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

std::string format_count(double value) {
  char buf[32];
  if (value >= 1e9) std::snprintf(buf, sizeof buf, "%.2fG", value / 1e9);
  else if (value >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", value / 1e6);
  else if (value >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", value / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", value);
  return buf;
}

ProgressBar::ProgressBar(std::string label, std::int64_t total_steps, bool enabled)
    : label_(std::move(label)), total_(total_steps), enabled_(enabled),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void ProgressBar::update(std::int64_t step, double loss, double accuracy, std::int64_t samples) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  // Redraw at most ~10 times a second: the terminal is slower than a small model's step.
  if (step < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double frac = total_ > 0 ? static_cast<double>(step) / static_cast<double>(total_) : 1.0;
  const double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
  constexpr int kWidth = 28;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(filled, '#');
  bar += std::string(kWidth - filled, '.');
  std::fprintf(stderr, "\r%s [%s] %3d%% loss %.4f acc %.2f%% %s samples/s ETA %s \033[K",
               label_.c_str(), bar.c_str(), static_cast<int>(frac * 100), loss, accuracy * 100,
               format_count(elapsed > 0 ? samples / elapsed : 0).c_str(),
               format_duration(eta).c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!enabled_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

}  // namespace shrink::tools
