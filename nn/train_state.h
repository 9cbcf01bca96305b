// What a training run holds besides its weights, captured so that a resumed run continues
// bit-identically: the optimizer's per-parameter state, the random streams the model
// draws from (each Dropout layer's mask generator) and the tally of an epoch in progress.
//
// Tensors are named "optim/<parameter>/<state key>" (e.g. "optim/1.weight/exp_avg");
// scalars are JSON: {"type": "AdamW", "lr": ..., "steps": {"1.weight": 12, ...}} for the
// optimizer, {"<module path>": {"seed": s, "offset": o}} for the dropout streams. The files
// that hold them are written by nn/run_state.h.
#pragma once
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "nn/training.h"

namespace shrink::nn {

inline constexpr const char* kOptimizerTensorPrefix = "optim/";

// The optimizer's state tensors (on the CPU), named as above, in parameter order.
NamedTensors optimizer_state_tensors(const Optimizer& optimizer);
// Its type, learning rate and (AdamW) per-parameter step counts.
nlohmann::json optimizer_scalars(const Optimizer& optimizer);
// Puts saved state back into a freshly built optimizer of the same type over the same
// parameters (moved to each parameter's device). `tensors` may hold other entries (those
// without the prefix are ignored). Any mismatch (type, an unknown parameter, a shape)
// throws, naming `file`.
void restore_optimizer(Optimizer& optimizer, const std::map<std::string, Tensor>& tensors,
                       const nlohmann::json& scalars, const std::string& file);

nlohmann::json generator_json(const Generator& gen);
Generator generator_from_json(const nlohmann::json& j, const std::string& what);

// Every Dropout layer's mask stream, by module path.
nlohmann::json dropout_streams(const Module& model);
// Restores them; the set of paths must be the model's exactly.
void restore_dropout_streams(Module& model, const nlohmann::json& streams, const std::string& file);

// The running sums of an epoch in progress (doubles round-trip exactly through JSON).
nlohmann::json tally_json(const EpochTally& tally);
EpochTally tally_from_json(const nlohmann::json& j, const std::string& what);

}  // namespace shrink::nn
