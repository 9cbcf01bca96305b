#include "core/stale_temp.h"

#include <signal.h>

#include <cerrno>
#include <charconv>
#include <filesystem>
#include <system_error>

namespace shrink {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kTempMarker = ".tmp.";

// The pid in "<prefix>.tmp.<digits>", or -1 when `name` is not of that form.
long temp_pid(std::string_view name) {
  const auto at = name.rfind(kTempMarker);
  if (at == std::string_view::npos || at == 0) return -1;
  const std::string_view digits = name.substr(at + kTempMarker.size());
  long pid = -1;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
  if (ec != std::errc() || end != digits.data() + digits.size() || pid <= 0) return -1;
  return pid;
}

// Removes the entries of `folder` that `wanted` accepts and whose pid is gone.
template <class Wanted>
std::vector<std::string> sweep(const fs::path& folder, Wanted wanted) {
  std::vector<std::string> removed;
  std::error_code ec;
  fs::directory_iterator it(folder, ec), end;
  if (ec) return removed;
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    const long pid = temp_pid(name);
    if (pid < 0 || !wanted(std::string_view(name).substr(0, name.rfind(kTempMarker)))) continue;
    if (!process_is_gone(pid)) continue;
    std::error_code remove_ec;
    fs::remove_all(it->path(), remove_ec);
    if (!remove_ec) removed.push_back(it->path().string());
  }
  return removed;
}

}  // namespace

bool process_is_gone(long pid) {
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

std::vector<std::string> remove_stale_temps(const std::string& path) {
  const fs::path target(path);
  const std::string base = target.filename().string();
  if (base.empty()) return {};
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  return sweep(folder, [&](std::string_view prefix) { return prefix == base; });
}

std::vector<std::string> remove_stale_temps_in(const std::string& folder) {
  return sweep(fs::path(folder), [](std::string_view) { return true; });
}

}  // namespace shrink
