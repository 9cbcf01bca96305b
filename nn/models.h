// Model builders. A model is named by a spec string:
//   mlp:W0-W1-...-Wk[:ACT]  Flatten, then Linear(W0,W1), ACT, ..., Linear(Wk-1,Wk); ACT
//                           (relu by default; relu6, gelu, tanh, sigmoid) sits between
//                           Linears, none after the last. Inputs of any (N, ...) shape
//                           are flattened to (N, W0).
//   lenet-300-100           = mlp:784-300-100-10 (LeCun et al. 1998).
//   ffn-10000               = mlp:784-10000-10, the two-layer network of the i-SpaSP
//                             MNIST experiments (Wolfe & Kyrillidis 2022).
// The model is a Sequential, so state_dict keys read "1.weight", "1.bias", "3.weight", ...
//
// Checkpoints describe a model by its architecture JSON (describe_architecture), built
// from the current weight shapes, so a pruned model describes its pruned widths, e.g.
//   {"family": "mlp", "widths": [784, 217, 64, 10], "activation": "relu", "bias": true}
// and build_from_architecture rebuilds the same structure (same keys and shapes).
// After unstructured pruning a layer may be a SparseLinear (CSR); then "nnz" lists each
// layer's stored weights, null for a dense Linear, e.g. "nnz": [10035, 3277, null].
#pragma once
#include <cstdint>
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

// Builds a model from a spec (above); unknown or malformed specs throw shrink::Error
// listing the valid forms.
std::shared_ptr<Module> build_model(const std::string& spec, Generator& gen);
// The named models build_model knows, besides the mlp:... family.
std::vector<std::string> model_names();

std::shared_ptr<Sequential> build_mlp(const std::vector<std::int64_t>& widths,
                                      const std::string& activation, bool bias, Generator& gen);

// Architecture of a model built by this file (throws for a structure it does not know).
nlohmann::json describe_architecture(const Module& model);
std::shared_ptr<Module> build_from_architecture(const nlohmann::json& architecture,
                                                Generator& gen);
// Per-sample input shape the architecture expects, e.g. {784} for an mlp (for FLOP counts).
Shape input_shape(const nlohmann::json& architecture);

}  // namespace shrink::nn
