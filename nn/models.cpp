#include "core/strings.h"
#include "nn/models.h"

#include <charconv>

#include "core/random.h"
#include "nn/activation.h"
#include "nn/flatten.h"
#include "nn/linear.h"
#include "nn/sparse_linear.h"

namespace shrink::nn {

namespace {

constexpr const char* kSpecForms =
    "mlp:W0-W1-...-Wk[:relu|relu6|gelu|tanh|sigmoid] (e.g. mlp:784-300-100-10), "
    "lenet-300-100, ffn-10000";
constexpr const char* kFamilies = "mlp";

std::shared_ptr<Module> parse_mlp(const std::string& spec, Generator& gen) {
  const auto fields = split(spec.substr(4), ':');
  SHRINK_CHECK(fields.size() <= 2, "build_model: malformed spec '", spec, "'; valid: ", kSpecForms);
  std::vector<std::int64_t> widths;
  for (const auto& text : split(fields[0], '-')) {
    std::int64_t w = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), w);
    SHRINK_CHECK(ec == std::errc() && end == text.data() + text.size() && w > 0,
                 "build_model: width '", text, "' in '", spec,
                 "' is not a positive integer; valid: ", kSpecForms);
    widths.push_back(w);
  }
  return build_mlp(widths, fields.size() == 2 ? fields[1] : "relu", true, gen);
}

template <class T>
T field(const nlohmann::json& j, const char* key) {
  SHRINK_CHECK(j.is_object() && j.contains(key), "architecture: missing field '", key, "' in ",
               j.dump());
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    fail("architecture: field '", key, "' has the wrong type in ", j.dump(), " (", e.what(), ")");
  }
}

}  // namespace

std::vector<std::string> model_names() { return {"lenet-300-100", "ffn-10000"}; }

std::shared_ptr<Sequential> build_mlp(const std::vector<std::int64_t>& widths,
                                      const std::string& activation, bool bias, Generator& gen) {
  SHRINK_CHECK(widths.size() >= 2, "build_mlp: needs at least two widths (in and out), got ",
               widths.size());
  for (auto w : widths) SHRINK_CHECK(w > 0, "build_mlp: widths must be > 0, got ", w);
  make_activation(activation);  // validates the name even for a single-layer model
  auto model = std::make_shared<Sequential>();
  model->push_back(std::make_shared<Flatten>());
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    if (i > 0) model->push_back(make_activation(activation));
    model->push_back(std::make_shared<Linear>(widths[i], widths[i + 1], bias, gen));
  }
  return model;
}

std::shared_ptr<Module> build_model(const std::string& spec, Generator& gen) {
  if (spec.rfind("mlp:", 0) == 0) return parse_mlp(spec, gen);
  if (spec == "lenet-300-100") return build_mlp({784, 300, 100, 10}, "relu", true, gen);
  if (spec == "ffn-10000") return build_mlp({784, 10000, 10}, "relu", true, gen);
  fail("build_model: unknown model '", spec, "'; valid: ", kSpecForms);
}

nlohmann::json describe_architecture(const Module& model) {
  const auto& layers = model.named_children();
  const char* expected = "describe_architecture: expected an mlp (Sequential of Flatten, "
                         "Linear, [activation, Linear]...), got ";
  SHRINK_CHECK(model.type_name() == "Sequential" && layers.size() >= 2 &&
                   layers.size() % 2 == 0 && layers[0].second->type_name() == "Flatten",
               expected, model.to_string());
  std::vector<std::int64_t> widths;
  std::string activation = "relu";
  bool bias = true;
  nlohmann::json nnz = nlohmann::json::array();
  bool any_sparse = false;
  for (std::size_t i = 1; i < layers.size(); ++i) {
    const Module& layer = *layers[i].second;
    if (i % 2 == 0) {  // activation between Linears: all the same kind
      const std::string name = activation_name(layer);
      SHRINK_CHECK(i == 2 || name == activation, "describe_architecture: mixed activations (",
                   activation, ", ", name, ")");
      activation = name;
      continue;
    }
    // A layer is a Linear or, after unstructured pruning, a SparseLinear (its nnz recorded).
    const auto* linear = dynamic_cast<const Linear*>(&layer);
    const auto* sparse = dynamic_cast<const SparseLinear*>(&layer);
    SHRINK_CHECK(linear != nullptr || sparse != nullptr, expected, model.to_string());
    const std::int64_t in = linear ? linear->in_features() : sparse->in_features();
    const bool has_bias = linear ? linear->has_bias() : sparse->has_bias();
    if (widths.empty()) {
      widths.push_back(in);
      bias = has_bias;
    }
    SHRINK_CHECK(in == widths.back(), "describe_architecture: layer ", layers[i].first, " takes ",
                 in, " features but receives ", widths.back());
    SHRINK_CHECK(has_bias == bias,
                 "describe_architecture: the mlp family needs all Linears with or without bias");
    widths.push_back(linear ? linear->out_features() : sparse->out_features());
    nnz.push_back(sparse ? nlohmann::json(sparse->nnz()) : nlohmann::json(nullptr));
    any_sparse = any_sparse || sparse != nullptr;
  }
  nlohmann::json out = {
      {"family", "mlp"}, {"widths", widths}, {"activation", activation}, {"bias", bias}};
  if (any_sparse) out["nnz"] = nnz;  // per layer: stored weights of a SparseLinear, null if dense
  return out;
}

std::shared_ptr<Module> build_from_architecture(const nlohmann::json& architecture,
                                                Generator& gen) {
  const auto family = field<std::string>(architecture, "family");
  if (family == "mlp") {
    const auto widths = field<std::vector<std::int64_t>>(architecture, "widths");
    const bool bias = field<bool>(architecture, "bias");
    auto model = build_mlp(widths, field<std::string>(architecture, "activation"), bias, gen);
    if (architecture.contains("nnz")) {  // unstructured-pruned layers: CSR placeholders
      const nlohmann::json& nnz = architecture.at("nnz");
      SHRINK_CHECK(nnz.is_array() && nnz.size() + 1 == widths.size(), "architecture: 'nnz' must "
                   "list one entry per layer (a count or null), got ", nnz.dump());
      for (std::size_t l = 0; l < nnz.size(); ++l) {
        if (nnz[l].is_null()) continue;
        SHRINK_CHECK(nnz[l].is_number_integer(), "architecture: nnz[", l, "] is ", nnz[l].dump());
        model->set_child(std::to_string(1 + 2 * l),
                         SparseLinear::with_capacity(widths[l], widths[l + 1],
                                                     nnz[l].get<std::int64_t>(), bias));
      }
    }
    return model;
  }
  fail("build_from_architecture: unknown family '", family, "'; valid: ", kFamilies);
}

Shape input_shape(const nlohmann::json& architecture) {
  const auto family = field<std::string>(architecture, "family");
  if (family == "mlp") {
    const auto widths = field<std::vector<std::int64_t>>(architecture, "widths");
    SHRINK_CHECK(!widths.empty(), "input_shape: mlp architecture has no widths");
    return {widths.front()};
  }
  fail("input_shape: unknown family '", family, "'; valid: ", kFamilies);
}

}  // namespace shrink::nn
