#include "nn/models.h"

#include <algorithm>
#include <charconv>

#include "core/outside_json.h"
#include "core/random.h"
#include "core/strings.h"
#include "nn/activation.h"
#include "nn/dropout.h"
#include "nn/flatten.h"
#include "nn/linear.h"
#include "nn/sparse_linear.h"

namespace shrink::nn {

namespace {

constexpr const char* kTextForms =
    "lenet-300-100, ffn-10000, mlp:W0-W1-...-Wk[:relu|relu6|gelu|tanh|sigmoid] "
    "(e.g. mlp:784-300-100-10)";

// Width bounds: far above any model this project trains (ffn-10000 has 7.9e6 parameters)
// and far below what would overflow an element or byte count, so a spec claiming a
// 2^62-unit layer is refused by name before any tensor is shaped from it.
constexpr std::int64_t kMaxWidth = std::int64_t{1} << 24;       // units per layer
constexpr std::int64_t kMaxParameters = std::int64_t{1} << 32;  // weights and biases in all

void check_width(const char* where, std::int64_t width, const std::string& spec) {
  SHRINK_CHECK(width > 0 && width <= kMaxWidth, where, ": width ", width, " in ", spec,
               " is out of range (1 to ", kMaxWidth, ")");
}

// Each width checked, then the parameter count summed without overflow (both factors are
// at most 2^24, and the sum stops at the first layer past the limit).
void check_widths(const char* where, const std::vector<std::int64_t>& widths,
                  const std::string& spec) {
  for (auto w : widths) check_width(where, w, spec);
  std::int64_t parameters = 0;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    parameters += widths[i] * widths[i + 1] + widths[i + 1];
    SHRINK_CHECK(parameters <= kMaxParameters, where, ": ", spec, " has more than ",
                 kMaxParameters, " parameters (the limit)");
  }
}

// ---- typed access to a spec's arguments ----

bool bool_argument(const nlohmann::json& spec, const char* key, bool fallback) {
  if (!spec.contains(key)) return fallback;
  SHRINK_CHECK(spec.at(key).is_boolean(), "model spec: '", key, "' must be true or false in ",
               quote_json(spec));
  return spec.at(key).get<bool>();
}

double dropout_argument(const nlohmann::json& spec) {
  if (!spec.contains("dropout")) return 0.0;
  SHRINK_CHECK(spec.at("dropout").is_number(), "model spec: 'dropout' must be a number in ",
               quote_json(spec));
  const double p = spec.at("dropout").get<double>();
  SHRINK_CHECK(p >= 0 && p < 1, "model spec: 'dropout' must be in [0, 1), got ", p);
  return p;
}

// "784-300-100-10[:gelu]" -> widths and activation.
std::pair<std::vector<std::int64_t>, std::string> parse_mlp_text(const std::string& text) {
  const auto fields = split(text, ':');
  SHRINK_CHECK(fields.size() <= 2, "model spec: malformed mlp '", text,
               "'; expected W0-W1-...-Wk[:ACTIVATION]");
  std::vector<std::int64_t> widths;
  for (const auto& w_text : split(fields[0], '-')) {
    std::int64_t w = 0;
    auto [end, ec] = std::from_chars(w_text.data(), w_text.data() + w_text.size(), w);
    SHRINK_CHECK(ec == std::errc() && end == w_text.data() + w_text.size() && w > 0,
                 "model spec: width '", w_text, "' in mlp '", text,
                 "' is not a positive integer; valid: ", kTextForms);
    widths.push_back(w);
  }
  check_widths("model spec", widths, "mlp '" + text + "'");
  return {widths, fields.size() == 2 ? fields[1] : "relu"};
}


std::string mlp_spec_argument(const nlohmann::json& spec) {
  SHRINK_CHECK(spec.contains("spec") && spec.at("spec").is_string(),
               "model spec: mlp needs \"spec\": \"W0-W1-...-Wk[:ACTIVATION]\", got ", quote_json(spec));
  return spec.at("spec").get<std::string>();
}

// Any mlp-family spec at the widths a model has taken on: an "mlp" spec with the same
// activation, bias and dropout.
nlohmann::json mlp_at_widths(const nlohmann::json& spec, const std::string& activation,
                             const Module& adopted) {
  nlohmann::json sized = spec;
  sized["model"] = "mlp";
  sized["spec"] = mlp_text(layer_widths(adopted), activation);
  return sized;
}

// A named mlp: fixed widths, relu, the family's bias and dropout arguments.
ModelBuilder named_mlp(const char* name, const char* description,
                       std::vector<std::int64_t> widths) {
  return {name, description, {"bias", "dropout"},
          [widths](const nlohmann::json& spec, Generator& gen) -> std::shared_ptr<Module> {
            return build_mlp(widths, "relu", bool_argument(spec, "bias", true), gen,
                             dropout_argument(spec));
          },
          [widths](const nlohmann::json&) { return Shape{widths.front()}; },
          [](const nlohmann::json& spec, const Module& adopted) {
            return mlp_at_widths(spec, "relu", adopted);
          }};
}

const ModelBuilder& find_builder(const std::string& name) {
  for (const auto& b : model_builders())
    if (b.name == name) return b;
  fail("model spec: unknown model '", name, "'; registered: ", join(model_names(), ", "));
}

const ModelBuilder& builder_of(const nlohmann::json& spec) {
  SHRINK_CHECK(spec.is_object() && spec.contains("model") && spec.at("model").is_string(),
               "model spec: needs {\"model\": NAME, ...}, got ", quote_json(spec));
  return find_builder(spec.at("model").get<std::string>());
}

}  // namespace

const std::vector<ModelBuilder>& model_builders() {
  static const std::vector<ModelBuilder> builders = {
      named_mlp("lenet-300-100", "mlp 784-300-100-10 with relu (LeCun et al. 1998)",
                {784, 300, 100, 10}),
      named_mlp("ffn-10000", "mlp 784-10000-10 with relu (the i-SpaSP MNIST network)",
                {784, 10000, 10}),
      {"mlp", "Flatten, then Linear layers W0-W1-...-Wk with an activation between them",
       {"spec", "bias", "dropout"},
       [](const nlohmann::json& spec, Generator& gen) -> std::shared_ptr<Module> {
         const auto [widths, activation] = parse_mlp_text(mlp_spec_argument(spec));
         return build_mlp(widths, activation, bool_argument(spec, "bias", true), gen,
                          dropout_argument(spec));
       },
       [](const nlohmann::json& spec) {
         return Shape{parse_mlp_text(mlp_spec_argument(spec)).first.front()};
       },
       [](const nlohmann::json& spec, const Module& adopted) {
         return mlp_at_widths(spec, parse_mlp_text(mlp_spec_argument(spec)).second, adopted);
       }},
  };
  return builders;
}

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& b : model_builders()) out.push_back(b.name);
  return out;
}

std::shared_ptr<Module> build_from_spec(const nlohmann::json& spec, Generator& gen) {
  const ModelBuilder& builder = builder_of(spec);
  nlohmann::json arguments = spec;  // what the builder sees: no "model", no "sparse"
  arguments.erase("model");
  arguments.erase("sparse");
  for (const auto& [key, value] : arguments.items()) {
    const bool known =
        std::find(builder.arguments.begin(), builder.arguments.end(), key) != builder.arguments.end();
    SHRINK_CHECK(known, "model spec: '", builder.name, "' takes no argument '", key,
                 "' (it takes: ", join(builder.arguments, ", "), ")");
  }
  std::shared_ptr<Module> model = builder.build(spec, gen);
  if (spec.contains("sparse")) {  // layers unstructured pruning replaced: CSR placeholders
    const nlohmann::json& sparse = spec.at("sparse");
    SHRINK_CHECK(sparse.is_object(), "model spec: 'sparse' must map paths to layers, got ",
                 quote_json(sparse));
    for (const auto& [path, layer] : sparse.items()) {
      auto size = [&](const char* key) {
        SHRINK_CHECK(layer.is_object() && layer.contains(key) &&
                         layer.at(key).is_number_integer(),
                     "model spec: sparse layer '", path, "' needs an integer '", key, "', got ",
                     quote_json(layer));
        return layer.at(key).get<std::int64_t>();
      };
      const std::string where = "sparse layer '" + path + "'";
      const std::int64_t in = size("in_features"), out = size("out_features"), nnz = size("nnz");
      check_width("model spec", in, where);
      check_width("model spec", out, where);
      SHRINK_CHECK(nnz >= 0 && nnz <= in * out && nnz <= kMaxParameters, "model spec: ", where,
                   " claims nnz ", nnz, " of a ", out, "x", in, " weight (at most ",
                   kMaxParameters, ")");
      model->set_child(path, SparseLinear::with_capacity(in, out, nnz,
                                                         bool_argument(layer, "bias", true)));
    }
  }
  nlohmann::json remembered = spec;
  remembered.erase("sparse");  // model_spec() derives it from the live layers
  model->set_builder_spec(remembered.dump());
  return model;
}

nlohmann::json parse_model_text(const std::string& text) {
  if (text.rfind("mlp:", 0) == 0) {
    parse_mlp_text(text.substr(4));  // validates now, so the error names the text
    return {{"model", "mlp"}, {"spec", text.substr(4)}};
  }
  for (const auto& b : model_builders())
    if (b.name == text && b.name != "mlp") return {{"model", text}};
  fail("build_model: unknown model '", text, "'; valid: ", kTextForms);
}

std::shared_ptr<Module> build_model(const std::string& text, Generator& gen) {
  return build_from_spec(parse_model_text(text), gen);
}

std::string mlp_text(const std::vector<std::int64_t>& widths, const std::string& activation) {
  std::vector<std::string> parts;
  for (auto w : widths) parts.push_back(std::to_string(w));
  const std::string text = join(parts, "-");
  return activation == "relu" ? text : text + ":" + activation;
}

Shape input_shape(const nlohmann::json& spec) { return builder_of(spec).input_shape(spec); }

nlohmann::json spec_at_sizes(const nlohmann::json& spec, const Module& adopted) {
  const ModelBuilder& builder = builder_of(spec);
  return builder.at_sizes ? builder.at_sizes(spec, adopted) : nlohmann::json();
}

std::shared_ptr<Sequential> build_mlp(const std::vector<std::int64_t>& widths,
                                      const std::string& activation, bool bias, Generator& gen,
                                      double dropout) {
  SHRINK_CHECK(widths.size() >= 2, "build_mlp: needs at least two widths (in and out), got ",
               widths.size());
  check_widths("build_mlp", widths, "mlp '" + mlp_text(widths, activation) + "'");
  SHRINK_CHECK(dropout >= 0 && dropout < 1, "build_mlp: dropout must be in [0, 1), got ", dropout);
  make_activation(activation);  // validates the name even for a single-layer model
  auto model = std::make_shared<Sequential>();
  model->push_back(std::make_shared<Flatten>());
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    if (i > 0) {
      model->push_back(make_activation(activation));
      if (dropout > 0) model->push_back(std::make_shared<Dropout>(dropout, gen));
    }
    model->push_back(std::make_shared<Linear>(widths[i], widths[i + 1], bias, gen));
  }
  nlohmann::json spec = {{"model", "mlp"}, {"spec", mlp_text(widths, activation)}};
  if (!bias) spec["bias"] = false;
  if (dropout > 0) spec["dropout"] = dropout;
  model->set_builder_spec(spec.dump());
  return model;
}

}  // namespace shrink::nn
