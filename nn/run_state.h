// A long run's state directory, for resuming after a kill (shrink-train, shrink-prune):
//
//   DIR/state-000000000120/model.safetensors   the model, a normal checkpoint (nn/checkpoint.h)
//   DIR/state-000000000120/state.safetensors   extra tensors (e.g. optim/<param>/<key>) and,
//                                              under the metadata key "state", the run's
//                                              scalars as JSON; "format": "shrink-run-state/1"
//
// The number is the caller's progress index (training: the global step; pruning: the
// round). A state is written into DIR/state-N.tmp.<pid>/ (each file through the atomic
// writer: temp file, fsync, rename), the folder is fsynced and then renamed to its final
// name, and DIR is fsynced: a kill at any moment leaves every earlier state whole, and a
// state folder is either complete or absent. Only the newest `keep` states are kept.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/checkpoint.h"
#include "nn/module.h"

namespace shrink::nn {

inline constexpr const char* kRunStateFormat = "shrink-run-state/1";

// Saves state `index` and prunes DIR to the newest `keep` (>= 1) states; stale temporary
// folders and files of dead processes in DIR are removed too. Creates DIR if needed.
// Returns the state's folder.
std::string save_run_state(const std::string& dir, std::int64_t index, const Module& model,
                           const NamedTensors& tensors, const nlohmann::json& state, int keep);

struct LoadedRunState {
  std::string path;  // the state's folder
  std::int64_t index = 0;
  Checkpoint checkpoint;  // the model, on the CPU
  std::map<std::string, Tensor> tensors;
  nlohmann::json state;
  // One line per newer state that could not be loaded (folder and why), newest first.
  std::vector<std::string> skipped;
};

// The indices of DIR's complete state folders, ascending (temporary folders excluded).
std::vector<std::int64_t> run_state_indices(const std::string& dir);

// Loads the newest state that loads; a corrupt or truncated newer one is skipped and
// reported in `skipped`. None loadable (or none at all) throws, naming DIR and each
// failure. `gen` feeds the model's throwaway initialisation (nn::load_checkpoint).
LoadedRunState load_latest_run_state(const std::string& dir, Generator& gen);

// Loads the state with this index exactly (throws naming the folder if it does not load).
LoadedRunState load_run_state(const std::string& dir, std::int64_t index, Generator& gen);

}  // namespace shrink::nn
