// Model checkpoints: a safetensors file (core/safetensors.h) holding the state dict, with
// the architecture JSON (nn/models.h) under the metadata key "architecture" and
// "format": "shrink/1". The file alone rebuilds the model, pruned widths included.
#pragma once
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "nn/module.h"

namespace shrink {
class Generator;
}

namespace shrink::nn {

inline constexpr const char* kCheckpointFormat = "shrink/1";

struct Checkpoint {
  std::shared_ptr<Module> model;
  nlohmann::json architecture;
  std::map<std::string, std::string> metadata;  // everything in __metadata__
};

// Saves atomically. `architecture` is normally describe_architecture(model) (nn/models.h).
// `extra` (e.g. epoch, accuracy, the command line) joins the metadata; it may not use the
// keys "format" or "architecture".
void save_checkpoint(const std::string& path, const Module& model,
                     const nlohmann::json& architecture,
                     const std::map<std::string, std::string>& extra = {});

// Rebuilds the model from the metadata and loads its weights (strictly: every key, every
// shape). `gen` only feeds the throwaway initialisation. The model is on the CPU.
Checkpoint load_checkpoint(const std::string& path, Generator& gen);

}  // namespace shrink::nn
