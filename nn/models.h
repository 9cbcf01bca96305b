// Model builders and model specs. A model is described by a spec, a JSON object naming a
// registered builder and its arguments:
//   {"model": "lenet-300-100"}                    mlp 784-300-100-10 (LeCun et al. 1998)
//   {"model": "ffn-10000"}                        mlp 784-10000-10, the two-layer network
//                                                 of the i-SpaSP experiments (Wolfe &
//                                                 Kyrillidis 2022)
//   {"model": "mlp", "spec": "784-300-100-10:gelu", "dropout": 0.1}
// An mlp is Flatten, then Linear(W0,W1), ACT, [Dropout,] ..., Linear(Wk-1,Wk): ACT (relu
// by default; relu6, gelu, tanh, sigmoid) and a Dropout when "dropout" > 0 follow every
// hidden Linear, none follow the last. Every mlp-family builder takes "bias" (default
// true) and "dropout" (default 0). The model is a Sequential, so state_dict keys read
// "1.weight", "1.bias", "3.weight", ...
//
// The command line names a model by text: "lenet-300-100", "ffn-10000" or
// "mlp:784-300-100-10[:gelu]" (parse_model_text).
//
// A model built from a spec remembers it (Module::builder_spec), so it can be saved and
// copied. model_spec() adds what pruning changed that no tensor shape says: the layers
// unstructured pruning replaced by a SparseLinear, by path,
//   "sparse": {"1": {"in_features": 784, "out_features": 300, "nnz": 10035, "bias": true}}
// Pruned widths need no entry: a rebuilt model adopts the saved tensors' shapes
// (load_state_dict with ShapeMismatch::Adopt).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/flops.h"
#include "nn/module.h"
#include "nn/sequential.h"

namespace shrink {
class Generator;
}

namespace shrink::nn {

// A checkpoint's tensor shapes by state-dict name ("1.weight" -> (300, 784)).
using SavedShapes = std::map<std::string, Shape>;

struct ModelBuilder {
  std::string name;                    // the spec's "model"
  std::string description;             // one line, for --help
  std::vector<std::string> arguments;  // the other keys the spec may hold
  // Builds at the default sizes from a spec whose arguments were checked against `arguments`.
  std::function<std::shared_ptr<Module>(const nlohmann::json& spec, Generator& gen)> build;
  // Per-sample input shape, e.g. {784} (FLOP counts feed one such sample).
  std::function<Shape(const nlohmann::json& spec)> input_shape;
  // Optional: the spec that builds this model directly at the sizes of a checkpoint's
  // tensors `saved` (see spec_at_sizes). The mlp family has it; others adopt shapes only.
  std::function<nlohmann::json(const nlohmann::json& spec, const SavedShapes& saved)> at_sizes;
  // Optional: how many values (weights, biases) the spec's model holds, computed without
  // building it. The mlp and transformer families have it (their builders refuse a spec above
  // kMaxParameters, nn/model_arguments.h, before allocating).
  std::function<std::int64_t(const nlohmann::json& spec)> parameter_count;
};

// Every registered builder, in a fixed order.
const std::vector<ModelBuilder>& model_builders();
// The registered builder names ("lenet-300-100", "ffn-10000", "mlp").
std::vector<std::string> model_names();

// Builds a model from a spec (with "sparse" entries: SparseLinear placeholders at those
// paths). The root remembers the spec. Unknown builders, unknown or ill-typed arguments
// throw shrink::Error naming them and listing the valid ones.
std::shared_ptr<Module> build_from_spec(const nlohmann::json& spec, Generator& gen);
// "lenet-300-100", "ffn-10000", "mlp:784-300-100-10[:gelu]" -> spec.
nlohmann::json parse_model_text(const std::string& text);
// build_from_spec(parse_model_text(text), gen).
std::shared_ptr<Module> build_model(const std::string& text, Generator& gen);

// The spec of a live model: its builder spec plus "sparse" for every SparseLinear in it.
// Throws for a model no registered builder made.
nlohmann::json model_spec(const Module& model);
// The spec that builds the model of `spec` directly at the sizes of a checkpoint's tensors
// `saved`, or null when its builder has no such form. Nothing is built: the saved shapes are
// compared with the architecture the spec describes first (every layer's tensor present, at
// most as wide as the spec's layer, consecutive layers fitting together; a sparse layer's
// entries as many as its "nnz"), and a mismatch throws shrink::Error naming the tensor and
// both shapes. So a small file cannot make the loader build the large model its spec names.
// load_checkpoint builds from the result, so that initialisation draws from the caller's
// generator what the saved model needs, no more: a seeded run on a pruned checkpoint then
// samples (calibration, shuffling) exactly as it did with shrink/1 checkpoints, which were
// built at their saved widths.
nlohmann::json spec_at_sizes(const nlohmann::json& spec, const SavedShapes& saved);
// How many values (weights, biases, sparse entries and their indices) build_from_spec(spec)
// allocates, computed without building; -1 when the spec's builder cannot say. Throws like
// build_from_spec on a malformed spec.
std::int64_t spec_parameter_count(const nlohmann::json& spec);
// The mlp spec text of widths and an activation: {784, 300, 10}, "gelu" -> "784-300-10:gelu"
// (relu, the default, is left out).
std::string mlp_text(const std::vector<std::int64_t>& widths, const std::string& activation);
// Per-sample input shape of a spec's model.
Shape input_shape(const nlohmann::json& spec);

// A structural copy for cost counting: rebuilt from model_spec(model), every floating
// tensor replaced by an uninitialised one of the live model's shape (no values copied;
// index buffers, which a forward reads, keep the rebuilt valid structure). On the CPU.
std::shared_ptr<Module> shape_copy(const Module& model);

// An mlp with `dropout` (0: none) after each hidden activation; remembers its spec.
std::shared_ptr<Sequential> build_mlp(const std::vector<std::int64_t>& widths,
                                      const std::string& activation, bool bias, Generator& gen,
                                      double dropout = 0.0);

// The input width of the first Linear (or SparseLinear), then each one's output width, in
// order: [784, 300, 100, 10] for lenet-300-100. What reports print as "widths".
std::vector<std::int64_t> layer_widths(const Module& model);

}  // namespace shrink::nn
