// Model checkpoints: a safetensors file (core/safetensors.h) holding the state dict, with
// "format": "shrink/2" and the model's spec (nn/models.h) under the metadata key "model",
// e.g. {"model":"mlp","spec":"784-300-100-10:gelu","dropout":0.1}. Loading builds the
// model from the spec, then adopts the saved tensors' shapes, so the file alone rebuilds
// any pruned model of any registered family.
//
// "shrink/1" files ({"family":"mlp","widths":[...],"activation","bias"[,"nnz"]} under
// "architecture") still load: their architecture is converted to a spec.
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

inline constexpr const char* kCheckpointFormat = "shrink/2";

struct Checkpoint {
  std::shared_ptr<Module> model;
  nlohmann::json spec;                          // model_spec(*model) as saved
  std::map<std::string, std::string> metadata;  // everything in __metadata__
};

// Saves atomically, with model_spec(model) (so the model must come from a registered
// builder). `extra` (e.g. epoch, accuracy, the command line) joins the metadata; it may
// not use the keys "format" or "model".
void save_checkpoint(const std::string& path, const Module& model,
                     const std::map<std::string, std::string>& extra = {});

// Rebuilds the model from the metadata and loads its weights (every key must match;
// shapes are adopted from the file). `gen` only feeds the throwaway initialisation. The
// model is on the CPU.
Checkpoint load_checkpoint(const std::string& path, Generator& gen);

// The spec equivalent to a "shrink/1" architecture JSON.
nlohmann::json spec_from_v1_architecture(const nlohmann::json& architecture);

}  // namespace shrink::nn
