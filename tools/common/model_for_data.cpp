#include "tools/common/model_for_data.h"

#include <algorithm>

#include "core/error.h"
#include "nn/models.h"

namespace shrink::tools {

namespace {

bool takes(const nn::ModelBuilder& builder, const std::string& key) {
  return std::find(builder.arguments.begin(), builder.arguments.end(), key) != builder.arguments.end();
}

const nn::ModelBuilder& builder_named(const nlohmann::json& spec) {
  const std::string name = spec.value("model", std::string());
  for (const auto& b : nn::model_builders())
    if (b.name == name) return b;
  fail("model spec names no registered builder: ", spec.dump());
}

// What a user can change to make the shapes meet.
constexpr const char* kFixHint =
    "(--input-size pads the images, --channels replicates a grey channel; an image model "
    "built from its name takes its input shape from the data set)";

}  // namespace

nlohmann::json spec_for_data(nlohmann::json spec, const datasets::Dataset& data) {
  const nn::ModelBuilder& builder = builder_named(spec);
  const Shape& sample = data.sample_shape;  // (C, H, W), or (T) for token ids
  if (data.vocab_size > 0) {  // a token data set: the vocabulary and the sequence length
    if (takes(builder, "vocab") && !spec.contains("vocab")) spec["vocab"] = data.vocab_size;
    if (takes(builder, "tokens") && !spec.contains("tokens")) spec["tokens"] = sample.at(0);
    if (takes(builder, "classes") && !spec.contains("classes")) spec["classes"] = data.num_classes;
    return spec;
  }
  if (takes(builder, "in_channels") && !spec.contains("in_channels")) spec["in_channels"] = sample.at(0);
  if (takes(builder, "input_size") && !spec.contains("input_size")) {
    SHRINK_CHECK(sample.at(1) == sample.at(2), "--data ", data.name, ": images are ", sample.at(1), "x",
                 sample.at(2), " but --model ", builder.name, " takes square images; pad them with --input-size");
    spec["input_size"] = sample.at(1);
  }
  if (takes(builder, "classes") && !spec.contains("classes")) spec["classes"] = data.num_classes;
  return spec;
}

void check_model_fits_data(const nlohmann::json& spec, const datasets::Dataset& data,
                           const std::string& what) {
  const Shape model_input = nn::input_shape(spec);
  const Shape& sample = data.sample_shape;
  const bool flat = model_input.size() == 1;  // an mlp flattens each sample
  const bool fits = flat ? model_input[0] == numel(sample) : model_input == sample;
  SHRINK_CHECK(fits, what, " takes samples of shape ", shape_str(model_input), " but --data ", data.name,
               " gives ", shape_str(sample), flat ? " (" + std::to_string(numel(sample)) + " values)" : "",
               " ", kFixHint);
  if (spec.contains("classes") && spec["classes"].is_number_integer())
    SHRINK_CHECK(spec["classes"].get<std::int64_t>() >= data.num_classes, what, " has ",
                 spec["classes"].get<std::int64_t>(), " outputs but --data ", data.name, " has ",
                 data.num_classes, " classes");
}

}  // namespace shrink::tools
