#include "tools/common/resume.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/outside_json.h"
#include "core/stale_temp.h"

namespace shrink::tools {

void check_checkpoint_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  SHRINK_CHECK(std::filesystem::is_directory(dir), "--checkpoint-dir ", dir, ": cannot create the folder (",
               ec ? ec.message() : "a file of that name exists", ")");
  SHRINK_CHECK(::access(dir.c_str(), W_OK) == 0, "--checkpoint-dir ", dir, ": the folder is not writable");
}

nn::LoadedRunState load_resume_state(const std::string& tool, const std::string& dir, Generator& gen) {
  for (const std::string& removed : remove_stale_temps_in(dir))  // what the killed run was writing
    std::fprintf(stderr, "%s: removed %s (left by a process that no longer runs)\n", tool.c_str(),
                 removed.c_str());
  nn::LoadedRunState state = nn::load_latest_run_state(dir, gen);
  for (const std::string& why : state.skipped)
    std::fprintf(stderr, "%s: warning: skipping %s\n", tool.c_str(), why.c_str());
  std::fprintf(stderr, "%s: resuming from %s\n", tool.c_str(), state.path.c_str());
  return state;
}

nlohmann::json resume_settings(const CLI::App& app, const nlohmann::json& given,
                               const nlohmann::json& saved, const std::set<std::string>& overridable,
                               const std::string& dir) {
  SHRINK_CHECK(saved.is_object(), "--resume ", dir, ": the saved settings are not a JSON object");
  nlohmann::json settings = saved;
  for (const CLI::Option* option : app.get_options()) {
    if (option->count() == 0) continue;
    std::string key = option->get_name();
    while (!key.empty() && key.front() == '-') key.erase(0, 1);
    if (key == "resume" || key == "help") continue;
    SHRINK_CHECK(given.contains(key), "--", key, " cannot be combined with --resume (it is not a "
                 "setting the run saves)");
    if (overridable.count(key)) {
      settings[key] = given.at(key);
      continue;
    }
    SHRINK_CHECK(saved.contains(key), "--", key, " cannot be combined with --resume ", dir,
                 ": the saved run has no such setting");
    SHRINK_CHECK(given.at(key) == saved.at(key), "--", key, " ", quote_json(given.at(key)),
                 " contradicts the run saved in ", dir, " (", key, " ", quote_json(saved.at(key)),
                 "); give --resume alone to continue it, or start a new run");
  }
  return settings;
}

}  // namespace shrink::tools
