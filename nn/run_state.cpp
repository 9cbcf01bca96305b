#include "nn/run_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "core/error.h"
#include "core/outside_json.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "core/stale_temp.h"

namespace shrink::nn {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "state-";
constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kStateFile = "state.safetensors";

std::string folder_name(std::int64_t index) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%012lld", kPrefix, static_cast<long long>(index));
  return buf;
}

// The index in "state-<digits>", or -1.
std::int64_t parse_folder_name(const std::string& name) {
  const std::string prefix = kPrefix;
  if (name.size() <= prefix.size() || name.rfind(prefix, 0) != 0 || name.size() > prefix.size() + 18) return -1;
  std::int64_t index = 0;
  for (std::size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    index = index * 10 + (name[i] - '0');
  }
  return index;
}

// Makes a folder's entries durable (best effort: some filesystems refuse directory fsync).
void sync_folder(const fs::path& folder) {
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string temp_suffix() { return ".tmp." + std::to_string(::getpid()); }

// Removes a folder by first renaming it to a temporary name (atomic), so a kill halfway
// through the removal leaves a stale temporary, never a half-deleted state.
void remove_state_folder(const fs::path& folder) {
  std::error_code ec;
  const fs::path doomed = folder.string() + ".old" + temp_suffix();  // not the name a new state is written under
  fs::remove_all(doomed, ec);
  fs::rename(folder, doomed, ec);
  fs::remove_all(ec ? folder : doomed, ec);
}

}  // namespace

std::vector<std::int64_t> run_state_indices(const std::string& dir) {
  std::vector<std::int64_t> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) return out;
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    const std::int64_t index = parse_folder_name(it->path().filename().string());
    if (index >= 0 && it->is_directory(ec)) out.push_back(index);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string save_run_state(const std::string& dir, std::int64_t index, const Module& model,
                           const NamedTensors& tensors, const nlohmann::json& state, int keep) {
  SHRINK_CHECK(index >= 0, "save_run_state: ", dir, ": index must be >= 0, got ", index);
  SHRINK_CHECK(keep >= 1, "save_run_state: ", dir, ": keep must be >= 1, got ", keep);
  std::error_code ec;
  fs::create_directories(dir, ec);
  SHRINK_CHECK(fs::is_directory(dir), "save_run_state: cannot create the folder ", dir,
               ec ? " (" + ec.message() + ")" : std::string());
  remove_stale_temps_in(dir);
  const fs::path final_path = fs::path(dir) / folder_name(index);
  const fs::path temp = final_path.string() + temp_suffix();
  fs::remove_all(temp, ec);
  SHRINK_CHECK(fs::create_directory(temp, ec), "save_run_state: cannot create ", temp.string(),
               " (", ec.message(), ")");
  try {
    save_checkpoint((temp / kModelFile).string(), model);
    save_safetensors((temp / kStateFile).string(), tensors,
                     {{"format", kRunStateFormat}, {"state", state.dump()}});
    sync_folder(temp);
    // A folder of this index from an earlier attempt (one that did not load, so the run
    // resumed before it) makes way: rename cannot replace a non-empty folder.
    if (fs::exists(final_path, ec)) remove_state_folder(final_path);
    fs::rename(temp, final_path, ec);
    SHRINK_CHECK(!ec, "save_run_state: rename of ", temp.string(), " to ", final_path.string(),
                 " failed (", ec.message(), ")");
  } catch (...) {
    fs::remove_all(temp, ec);
    throw;
  }
  sync_folder(dir);
  std::vector<std::int64_t> indices = run_state_indices(dir);
  for (std::size_t i = 0; i + static_cast<std::size_t>(keep) < indices.size(); ++i)
    remove_state_folder(fs::path(dir) / folder_name(indices[i]));
  return final_path.string();
}

LoadedRunState load_run_state(const std::string& dir, std::int64_t index, Generator& gen) {
  LoadedRunState out;
  out.index = index;
  out.path = (fs::path(dir) / folder_name(index)).string();
  const std::string state_file = (fs::path(out.path) / kStateFile).string();
  SafetensorsContents contents = load_safetensors(state_file);
  auto format = contents.metadata.find("format");
  SHRINK_CHECK(format != contents.metadata.end() && format->second == kRunStateFormat, state_file,
               ": not a run state (metadata 'format' is ",
               format == contents.metadata.end() ? "missing" : "'" + format->second + "'",
               ", expected '", kRunStateFormat, "')");
  auto state = contents.metadata.find("state");
  SHRINK_CHECK(state != contents.metadata.end(), state_file, ": metadata has no 'state'");
  out.state = parse_outside_json(state->second, state_file + ": metadata 'state'");
  SHRINK_CHECK(out.state.is_object(), state_file, ": metadata 'state' is not a JSON object");
  out.tensors = std::move(contents.tensors);
  out.checkpoint = load_checkpoint((fs::path(out.path) / kModelFile).string(), gen);
  return out;
}

LoadedRunState load_latest_run_state(const std::string& dir, Generator& gen) {
  SHRINK_CHECK(fs::is_directory(dir), "resume: ", dir, " is not a folder");
  const std::vector<std::int64_t> indices = run_state_indices(dir);
  SHRINK_CHECK(!indices.empty(), "resume: ", dir, " holds no saved state (state-<N> folders)");
  std::vector<std::string> skipped;
  for (auto it = indices.rbegin(); it != indices.rend(); ++it) {
    Generator attempt = gen;  // a failed attempt must not advance the caller's stream
    try {
      LoadedRunState loaded = load_run_state(dir, *it, attempt);
      gen = attempt;
      loaded.skipped = std::move(skipped);
      return loaded;
    } catch (const std::exception& e) {  // shrink::Error, or a failed allocation or read
      skipped.push_back((fs::path(dir) / folder_name(*it)).string() + ": " + e.what());
    }
  }
  std::string why;
  for (const auto& s : skipped) why += "\n  " + s;
  fail("resume: no loadable state in ", dir, ":", why);
}

}  // namespace shrink::nn
