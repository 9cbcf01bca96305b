// The command-line side of resuming a run (--checkpoint-dir DIR, --resume DIR): loading
// the newest state with a warning for each newer one skipped, and reconciling the flags
// given with --resume against the settings the run saved.
//
// A run's settings are JSON keyed by flag name without the dashes ({"lr": 0.05, ...}).
// With --resume DIR the saved settings are the run's; a flag given as well must agree with
// its saved value (compared as values: 0.050 equals 0.05), except the `overridable` ones
// (settings that cannot change the result, e.g. threads, out), whose new value wins.
#pragma once
#include <CLI/CLI.hpp>

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "nn/run_state.h"

namespace shrink::tools {

// Fails before any work when --checkpoint-dir DIR cannot hold states: DIR is created if
// missing (with its parents) and must then be a writable folder.
void check_checkpoint_dir(const std::string& dir);

// Removes the temporary files and folders dead processes left in DIR, then
// nn::load_latest_run_state, printing "<tool>: warning: skipping <folder>: <why>" for
// each newer state that did not load, and "<tool>: resuming from <folder>" once loaded.
nn::LoadedRunState load_resume_state(const std::string& tool, const std::string& dir, Generator& gen);

// The settings to run with: `saved`, with the overridable flags given on the command line
// taken from `given` (the settings as parsed, i.e. with defaults for flags not given).
// A given flag that is not overridable must equal its saved value, else a shrink::Error
// names the flag, both values and DIR. `--resume` itself is skipped.
nlohmann::json resume_settings(const CLI::App& app, const nlohmann::json& given,
                               const nlohmann::json& saved, const std::set<std::string>& overridable,
                               const std::string& dir);

// settings[key] as T, or an error naming the key and DIR (a state from another version).
template <class T>
T saved_setting(const nlohmann::json& settings, const std::string& key, const std::string& dir) {
  try {
    return settings.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw Error("--resume " + dir + ": saved setting '" + key + "' is missing or has the wrong type (" +
                e.what() + ")");
  }
}

}  // namespace shrink::tools
