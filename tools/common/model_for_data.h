// Fitting a model to the data set it is trained or evaluated on. Image builders (nn/models_cnn.h)
// take "in_channels", "input_size" and "classes": a new model takes those it was not given from
// the data set, so `shrink-train --model resnet20 --data fashion-mnist --input-size 32` builds a
// 1-channel, 32x32, 10-class ResNet-20. Any model's per-sample input is then checked against
// the data's samples before a step runs, so a mismatch names both shapes and the flags that fix it.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "datasets/dataset.h"

namespace shrink::tools {

// `spec` with the image arguments its builder takes and it lacks set from `data`.
// Throws naming --data when the builder needs square images and `data`'s are not.
nlohmann::json spec_for_data(nlohmann::json spec, const datasets::Dataset& data);

// Throws unless the model `spec` describes reads samples of `data`'s shape (an mlp reads
// their C*H*W values flattened) and has at least as many outputs as `data` has classes when
// the spec says (image builders' "classes"). `what` names the model in the message.
void check_model_fits_data(const nlohmann::json& spec, const datasets::Dataset& data,
                           const std::string& what);

}  // namespace shrink::tools
