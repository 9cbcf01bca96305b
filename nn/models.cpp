#include "nn/models.h"
#include "nn/model_arguments.h"
#include "nn/models_cnn.h"
#include "nn/models_transformer.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "core/outside_json.h"
#include "core/random.h"
#include "core/strings.h"
#include "nn/activation.h"
#include "nn/conv.h"
#include "nn/dropout.h"
#include "nn/flatten.h"
#include "nn/input_selection.h"
#include "nn/linear.h"
#include "nn/sparse_conv.h"
#include "nn/sparse_linear.h"

namespace shrink::nn {

namespace {

constexpr const char* kTextForms =
    "lenet-300-100, ffn-10000, lenet5, resnet20/32/44/56/110, resnet18/34/50, mobilenetv2, "
    "mlp:W0-W1-...-Wk[:relu|relu6|gelu|tanh|sigmoid] (e.g. mlp:784-300-100-10), "
    "NAME:KEY=VALUE,... (e.g. resnet18:small_input=true, mobilenetv2:width=0.5), or a JSON spec";

// Width bounds: far above any model this project trains (ffn-10000 has 7.9e6 parameters)
// and far below what would overflow an element or byte count, so a spec claiming a
// 2^62-unit layer is refused by name before any tensor is shaped from it.
constexpr std::int64_t kMaxWidth = std::int64_t{1} << 24;       // units per layer

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

// A spec's "sparse" entry: the SparseLinear placeholder build_from_spec puts at `path`.
// A convolution's entry also carries its geometry (a "in_channels" key marks it).
struct SparseLayer {
  std::string path;
  std::int64_t in, out, nnz;
  bool bias;
  std::optional<Conv2dGeometry> conv;
  std::shared_ptr<Module> placeholder() const {
    if (conv) return SparseConv2d::with_capacity(in, out, *conv, nnz, bias);
    return SparseLinear::with_capacity(in, out, nnz, bias);
  }
};

std::vector<SparseLayer> sparse_layers(const nlohmann::json& spec) {
  std::vector<SparseLayer> layers;
  if (!spec.contains("sparse")) return layers;
  const nlohmann::json& sparse = spec.at("sparse");
  SHRINK_CHECK(sparse.is_object(), "model spec: 'sparse' must map paths to layers, got ",
               quote_json(sparse));
  for (auto entry = sparse.begin(); entry != sparse.end(); ++entry) {
    // Named references, not structured bindings: clang 14 cannot capture those.
    const std::string& path = entry.key();
    const nlohmann::json& layer = entry.value();
    auto size = [&](const char* key) {
      SHRINK_CHECK(layer.is_object() && layer.contains(key) && layer.at(key).is_number_integer(),
                   "model spec: sparse layer '", path, "' needs an integer '", key, "', got ",
                   quote_json(layer));
      return layer.at(key).get<std::int64_t>();
    };
    const std::string where = "sparse layer '" + path + "'";
    const bool conv = layer.is_object() && layer.contains("in_channels");
    const std::int64_t in = size(conv ? "in_channels" : "in_features");
    const std::int64_t out = size(conv ? "out_channels" : "out_features"), nnz = size("nnz");
    check_width("model spec", in, where);
    check_width("model spec", out, where);
    std::optional<Conv2dGeometry> geometry;
    std::int64_t row_length = in;  // stored weights a row can hold
    if (conv) {
      Conv2dGeometry g;
      g.kernel_h = size("kernel_h"), g.kernel_w = size("kernel_w"), g.stride = size("stride");
      g.padding = size("padding"), g.dilation = size("dilation"), g.groups = size("groups");
      for (const std::int64_t v : {g.kernel_h, g.kernel_w, g.stride, g.dilation, g.groups})
        check_width("model spec", v, where);
      SHRINK_CHECK(g.padding >= 0 && g.padding <= kMaxWidth && in % g.groups == 0 && out % g.groups == 0,
                   "model spec: ", where, " has padding ", g.padding, " or groups ", g.groups,
                   " that do not fit ", in, " -> ", out, " channels");
      SHRINK_CHECK(g.kernel_h * g.kernel_w <= kMaxWidth, "model spec: ", where, " has a kernel of ",
                   g.kernel_h, "x", g.kernel_w);
      row_length = in / g.groups * g.kernel_h * g.kernel_w;
      geometry = g;
    }
    // nnz <= row_length out, asked without forming the product (up to 2^72 for a conv).
    SHRINK_CHECK(nnz >= 0 && nnz <= kMaxParameters && (nnz + out - 1) / out <= row_length, "model spec: ", where,
                 " claims nnz ", nnz, " of a weight with ", out, " rows of ", row_length, " (at most ",
                 kMaxParameters, ")");
    layers.push_back({path, in, out, nnz, bool_argument(layer, "bias", true), geometry});
  }
  return layers;
}

// A spec's "inputs" entry: the layers that select input features, by path, with the
// features each reads from (nn/input_selection.h).
struct InputLayer {
  std::string path;
  std::int64_t features;
};

std::vector<InputLayer> input_layers(const nlohmann::json& spec) {
  std::vector<InputLayer> layers;
  if (!spec.contains("inputs")) return layers;
  const nlohmann::json& inputs = spec.at("inputs");
  SHRINK_CHECK(inputs.is_object() && !inputs.empty(), "model spec: 'inputs' must map layer paths to "
               "{\"features\": N}, got ", quote_json(inputs));
  for (auto entry = inputs.begin(); entry != inputs.end(); ++entry) {
    const nlohmann::json& layer = entry.value();
    SHRINK_CHECK(layer.is_object() && layer.size() == 1 && layer.contains("features") &&
                     layer.at("features").is_number_integer(),
                 "model spec: input selection '", entry.key(), "' needs exactly an integer 'features', got ",
                 quote_json(layer));
    const std::int64_t features = layer.at("features").get<std::int64_t>();
    check_width("model spec", features, "input selection '" + entry.key() + "'");
    layers.push_back({entry.key(), features});
  }
  return layers;
}

// Weights and biases of an mlp of `widths` (checked by check_widths: no overflow).
std::int64_t mlp_parameter_count(const std::vector<std::int64_t>& widths, bool bias) {
  std::int64_t count = 0;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i)
    count += widths[i] * widths[i + 1] + (bias ? widths[i + 1] : 0);
  return count;
}

const Shape& saved_shape(const SavedShapes& saved, const std::string& name,
                         const std::string& layer) {
  auto it = saved.find(name);
  SHRINK_CHECK(it != saved.end(), "the checkpoint has no tensor '", name, "', which ", layer,
               " of its model spec needs");
  return it->second;
}

// The "mlp" spec (same activation, bias, dropout, sparse layers) that builds an mlp-family
// model of spec widths `widths` at the sizes of the checkpoint tensors `saved`. Layer l is
// the Sequential's child 1 + l * stride (Flatten, then Linear, ACT, [Dropout,] Linear, ...):
// its "weight" (out, in) gives its widths, or, for a sparse layer, its spec entry does and
// its "values" and "col_idx" must hold the entry's nnz. Pruning only narrows layers, so a
// saved layer wider than the spec's is refused with both shapes.
nlohmann::json mlp_at_saved_sizes(const nlohmann::json& spec, const std::vector<std::int64_t>& widths,
                                  const std::string& activation, const SavedShapes& saved) {
  const std::size_t stride = dropout_argument(spec) > 0 ? 3 : 2;
  std::map<std::string, SparseLayer> sparse;
  for (auto& layer : sparse_layers(spec)) sparse.emplace(layer.path, layer);
  std::vector<std::int64_t> sized;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    const std::string path = std::to_string(1 + stride * l);
    const std::string layer = "layer " + std::to_string(l) + " (" + path + ")";
    const Shape spec_shape{widths[l + 1], widths[l]};
    std::string name = path + ".weight";
    Shape shape;
    if (auto it = sparse.find(path); it != sparse.end()) {
      const SparseLayer s = it->second;
      sparse.erase(it);
      for (const char* entries : {".values", ".col_idx"}) {
        name = path + entries;
        const Shape& got = saved_shape(saved, name, layer);
        SHRINK_CHECK(got == Shape{s.nnz}, "tensor '", name, "' has shape ", shape_str(got),
                     " but the model spec's sparse layer '", path, "' holds ", s.nnz,
                     " entries (shape ", shape_str(Shape{s.nnz}), ")");
      }
      name = "sparse layer '" + path + "'";
      shape = {s.out, s.in};
    } else {
      shape = saved_shape(saved, name, layer);
      SHRINK_CHECK(shape.size() == 2, "tensor '", name, "' has shape ", shape_str(shape),
                   " but the model spec's ", layer, " has a weight of shape ", shape_str(spec_shape));
    }
    SHRINK_CHECK(shape[0] <= spec_shape[0] && shape[1] <= spec_shape[1], "tensor '", name,
                 "' has shape ", shape_str(shape), ", wider than the model spec's ", layer,
                 " of shape ", shape_str(spec_shape), " (pruning only narrows layers)");
    if (l == 0) sized.push_back(shape[1]);
    SHRINK_CHECK(shape[1] == sized.back(), "tensor '", name, "' has shape ", shape_str(shape),
                 " but the layer before it gives ", sized.back(), " features");
    sized.push_back(shape[0]);
  }
  // A placeholder anywhere else would be built at its claimed size unchecked.
  SHRINK_CHECK(sparse.empty(), "model spec: sparse layer '",
               sparse.empty() ? "" : sparse.begin()->first, "' is not one of the mlp's ",
               widths.size() - 1, " layers (children 1, ", 1 + stride, ", ...)");
  check_widths("model spec", sized, "the checkpoint's mlp '" + mlp_text(sized, activation) + "'");
  // An input selection (nn/input_selection.h) is the Flatten's, reads the spec's input
  // width and keeps as many features as the first layer has columns.
  for (const InputLayer& in : input_layers(spec)) {
    SHRINK_CHECK(in.path == "0", "model spec: input selection '", in.path,
                 "' is not the mlp's Flatten (child 0), the only layer of an mlp that selects input features");
    SHRINK_CHECK(in.features == widths.front(), "model spec: input selection '0' reads ", in.features,
                 " features but the mlp's input has ", widths.front());
    const std::string name = std::string("0.") + kInputIndex;
    const Shape& got = saved_shape(saved, name, "the input selection");
    SHRINK_CHECK(got == Shape{sized.front()}, "tensor '", name, "' has shape ", shape_str(got),
                 " but the first layer reads ", sized.front(), " features (shape ", shape_str(Shape{sized.front()}), ")");
  }
  nlohmann::json out = spec;
  out["model"] = "mlp";
  out["spec"] = mlp_text(sized, activation);
  return out;
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
          [widths](const nlohmann::json& spec, const SavedShapes& saved) {
            return mlp_at_saved_sizes(spec, widths, "relu", saved);
          },
          [widths](const nlohmann::json& spec) {
            return mlp_parameter_count(widths, bool_argument(spec, "bias", true));
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
  static const std::vector<ModelBuilder> builders = [] {
  std::vector<ModelBuilder> all = {
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
       [](const nlohmann::json& spec, const SavedShapes& saved) {
         const auto [widths, activation] = parse_mlp_text(mlp_spec_argument(spec));
         return mlp_at_saved_sizes(spec, widths, activation, saved);
       },
       [](const nlohmann::json& spec) {
         return mlp_parameter_count(parse_mlp_text(mlp_spec_argument(spec)).first,
                                    bool_argument(spec, "bias", true));
       }},
  };
  for (ModelBuilder& b : cnn_builders()) all.push_back(std::move(b));  // nn/models_cnn.h
  for (ModelBuilder& b : transformer_builders()) all.push_back(std::move(b));  // nn/models_transformer.h
  return all;
  }();
  return builders;
}

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& b : model_builders()) out.push_back(b.name);
  return out;
}

namespace {

// The spec's builder, once every argument is one it takes.
const ModelBuilder& checked_builder(const nlohmann::json& spec) {
  const ModelBuilder& builder = builder_of(spec);
  for (const auto& [key, value] : spec.items()) {  // the builder sees all but "model", "sparse", "inputs"
    const bool known = key == "model" || key == "sparse" || key == "inputs" ||
                       std::find(builder.arguments.begin(), builder.arguments.end(), key) !=
                           builder.arguments.end();
    SHRINK_CHECK(known, "model spec: '", builder.name, "' takes no argument '", key,
                 "' (it takes: ", join(builder.arguments, ", "), ")");
  }
  return builder;
}

}  // namespace

std::shared_ptr<Module> build_from_spec(const nlohmann::json& spec, Generator& gen) {
  const ModelBuilder& builder = checked_builder(spec);
  std::shared_ptr<Module> model = builder.build(spec, gen);
  // Layers unstructured pruning replaced: CSR placeholders.
  for (const SparseLayer& s : sparse_layers(spec))
    model->set_child(s.path, s.placeholder());
  // Layers input pruning made select features: a placeholder selection of the layer's
  // current width (a checkpoint's "input_index" replaces it).
  for (const InputLayer& in : input_layers(spec)) {
    std::shared_ptr<Module> layer;
    try {
      layer = model->child(in.path);
    } catch (const Error&) {
      fail("model spec: input selection '", in.path, "' names no layer of the model");
    }
    auto* selecting = dynamic_cast<InputSelection*>(layer.get());
    SHRINK_CHECK(selecting != nullptr, "model spec: input selection '", in.path, "' names a ",
                 layer->type_name(), ", which cannot select input features");
    std::int64_t kept = in.features;  // as many as the next weighted layer reads
    bool after = false;
    for (const auto& [path, module] : model->named_modules()) {
      if (path == in.path) after = true;
      if (!after || path == in.path) continue;
      if (const auto* linear = dynamic_cast<const Linear*>(module)) kept = std::min(in.features, linear->in_features());
      else if (const auto* conv = dynamic_cast<const Conv2d*>(module)) kept = std::min(in.features, conv->in_channels());
      else continue;
      break;
    }
    selecting->select_inputs(Tensor::arange(kept), in.features);
  }
  nlohmann::json remembered = spec;
  remembered.erase("sparse");  // model_spec() derives these from the live layers
  remembered.erase("inputs");
  model->set_builder_spec(remembered.dump());
  return model;
}

namespace {

// "true"/"false", a JSON number, or else the text itself as a string.
nlohmann::json argument_value(const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  std::int64_t i = 0;
  const char* end = text.data() + text.size();
  if (auto [p, ec] = std::from_chars(text.data(), end, i); ec == std::errc() && p == end) return i;
  double d = 0;
  if (auto [p, ec] = std::from_chars(text.data(), end, d); ec == std::errc() && p == end) return d;
  return text;
}

// "k1=v1,k2=v2" into `spec`; the builder checks names and types when it builds.
void add_text_arguments(const std::string& model_text, const std::string& arguments, nlohmann::json& spec) {
  for (const std::string& item : split(arguments, ',')) {
    const auto eq = item.find('=');
    SHRINK_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < item.size(), "model '", model_text,
                 "': argument '", item, "' is not KEY=VALUE");
    const std::string key = item.substr(0, eq);
    SHRINK_CHECK(!spec.contains(key), "model '", model_text, "': argument '", key, "' given twice");
    spec[key] = argument_value(item.substr(eq + 1));
  }
}

}  // namespace

nlohmann::json parse_model_text(const std::string& text) {
  if (text.rfind("mlp:", 0) == 0) {
    parse_mlp_text(text.substr(4));  // validates now, so the error names the text
    return {{"model", "mlp"}, {"spec", text.substr(4)}};
  }
  if (!text.empty() && text.front() == '{') {
    nlohmann::json spec = parse_outside_json(text, "model spec");
    checked_builder(spec);  // names an unknown builder or argument now
    return spec;
  }
  const auto colon = text.find(':');
  const std::string name = text.substr(0, colon);
  for (const auto& b : model_builders())
    if (b.name == name && b.name != "mlp") {
      nlohmann::json spec{{"model", name}};
      if (colon != std::string::npos) add_text_arguments(text, text.substr(colon + 1), spec);
      checked_builder(spec);
      return spec;
    }
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

nlohmann::json spec_at_sizes(const nlohmann::json& spec, const SavedShapes& saved) {
  const ModelBuilder& builder = checked_builder(spec);
  return builder.at_sizes ? builder.at_sizes(spec, saved) : nlohmann::json();
}

std::int64_t spec_parameter_count(const nlohmann::json& spec) {
  const ModelBuilder& builder = checked_builder(spec);
  if (!builder.parameter_count) return -1;
  std::int64_t count = builder.parameter_count(spec);
  // Each sparse layer adds its entries, their column indices, its row pointers and bias
  // (every term at most 2^32 + 2^25: no overflow).
  for (const SparseLayer& s : sparse_layers(spec)) count += 2 * s.nnz + 2 * s.out + 1;
  for (const InputLayer& in : input_layers(spec)) count += in.features;  // at most the index
  return count;
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
