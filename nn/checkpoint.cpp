#include "nn/checkpoint.h"

#include "core/ops.h"
#include "core/outside_json.h"
#include "core/random.h"
#include "core/safetensors.h"
#include "core/strings.h"
#include "nn/models.h"

namespace shrink::nn {

namespace {

constexpr const char* kFormatV1 = "shrink/1";

template <class T>
T field(const nlohmann::json& j, const char* key) {
  SHRINK_CHECK(j.is_object() && j.contains(key), "architecture: missing field '", key, "' in ",
               quote_json(j));
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    fail("architecture: field '", key, "' has the wrong type in ", quote_json(j), " (", e.what(), ")");
  }
}

// Weights with NaN or Inf are a broken checkpoint (a diverged run saved by another tool,
// a corrupted file): refused on load, so nothing evaluates or prunes them silently.
void check_finite(const std::string& path, const std::map<std::string, Tensor>& tensors) {
  const std::string bad = first_nonfinite_named({tensors.begin(), tensors.end()});
  SHRINK_CHECK(bad.empty(), "load_checkpoint: ", path, ": tensor ", bad, ": the weights are not usable");
}

// load_state_dict casts a saved tensor to its slot's dtype; an index (an int64 slot: an
// input selection, CSR structure) stored as floats would be truncated silently, so it is
// refused by name instead.
void check_index_dtypes(const Module& model, const std::map<std::string, Tensor>& tensors) {
  for (const auto& [name, slot] : model.named_buffers()) {
    auto saved = tensors.find(name);
    if (slot.dtype() == DType::Int64 && saved != tensors.end())
      SHRINK_CHECK(saved->second.dtype() == DType::Int64, "tensor '", name, "' is ",
                   dtype_name(saved->second.dtype()), "; it holds indices, which must be int64");
  }
}

}  // namespace

nlohmann::json spec_from_v1_architecture(const nlohmann::json& architecture) {
  const auto family = field<std::string>(architecture, "family");
  SHRINK_CHECK(family == "mlp", "architecture: unknown family '", family, "'; valid: mlp");
  const auto widths = field<std::vector<std::int64_t>>(architecture, "widths");
  SHRINK_CHECK(widths.size() >= 2, "architecture: 'widths' needs at least two entries, got ",
               quote_json(architecture));
  const auto activation = field<std::string>(architecture, "activation");
  const bool bias = field<bool>(architecture, "bias");
  nlohmann::json spec = {{"model", "mlp"}, {"spec", mlp_text(widths, activation)}};
  if (!bias) spec["bias"] = false;
  if (architecture.contains("nnz")) {  // per layer: a SparseLinear's stored weights, or null
    const nlohmann::json& nnz = architecture.at("nnz");
    SHRINK_CHECK(nnz.is_array() && nnz.size() + 1 == widths.size(), "architecture: 'nnz' must "
                 "list one entry per layer (a count or null), got ", quote_json(nnz));
    nlohmann::json sparse = nlohmann::json::object();
    for (std::size_t l = 0; l < nnz.size(); ++l) {
      if (nnz[l].is_null()) continue;
      SHRINK_CHECK(nnz[l].is_number_integer(), "architecture: nnz[", l, "] is ", quote_json(nnz[l]));
      // v1 mlps are Flatten, Linear, ACT, Linear, ...: layer l sits at child 1 + 2l.
      sparse[std::to_string(1 + 2 * l)] = {{"in_features", widths[l]},
                                           {"out_features", widths[l + 1]},
                                           {"nnz", nnz[l]},
                                           {"bias", bias}};
    }
    spec["sparse"] = sparse;
  }
  return spec;
}

void save_checkpoint(const std::string& path, const Module& model,
                     const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> metadata = extra;
  for (const char* reserved : {"format", "model"})
    SHRINK_CHECK(!extra.count(reserved), "save_checkpoint: ", path, ": metadata key '", reserved,
                 "' is reserved");
  metadata["format"] = kCheckpointFormat;
  metadata["model"] = model_spec(model).dump();
  NamedTensors tensors = model.named_parameters();
  for (auto& entry : model.named_buffers()) tensors.push_back(entry);
  save_safetensors(path, tensors, metadata);
}

Checkpoint load_checkpoint(const std::string& path, Generator& gen) {
  SafetensorsContents contents = load_safetensors(path);
  check_finite(path, contents.tensors);
  auto format = contents.metadata.find("format");
  const bool v1 = format != contents.metadata.end() && format->second == kFormatV1;
  SHRINK_CHECK(v1 || (format != contents.metadata.end() && format->second == kCheckpointFormat),
               "load_checkpoint: ", path, ": not a shrink checkpoint (metadata 'format' is ",
               format == contents.metadata.end() ? "missing" : "'" + format->second + "'",
               ", expected '", kCheckpointFormat, "' or '", kFormatV1, "')");
  const char* key = v1 ? "architecture" : "model";
  auto described = contents.metadata.find(key);
  SHRINK_CHECK(described != contents.metadata.end(), "load_checkpoint: ", path,
               ": metadata has no '", key, "'");
  Checkpoint out;
  try {
    const nlohmann::json saved =
        parse_outside_json(described->second, std::string("metadata '") + key + "'");
    out.spec = v1 ? spec_from_v1_architecture(saved) : saved;
    // The saved shapes are compared with the spec's architecture before anything is built,
    // and the model is built at the file's sizes: a small file whose spec names a huge model
    // costs what the file holds, no more. Every value is overwritten by the file's: no
    // fills, only the stream advances (as the saved model's initialisation did).
    SavedShapes shapes;
    for (const auto& [name, t] : contents.tensors) shapes.emplace(name, t.shape());
    const nlohmann::json sized = spec_at_sizes(out.spec, shapes);
    FillsOff no_fills(gen);
    if (!sized.is_null()) {
      out.model = build_from_spec(sized, gen);
      check_index_dtypes(*out.model, contents.tensors);
      out.model->load_state_dict(contents.tensors, /*strict=*/true, Module::ShapeMismatch::Adopt);
      nlohmann::json remembered = out.spec;  // as build_from_spec(out.spec) would remember it
      remembered.erase("sparse");
      remembered.erase("inputs");
      out.model->set_builder_spec(remembered.dump());
    } else {
      // A builder without a sized form: built at its default sizes, the model adopts the
      // saved shapes.
      out.model = build_from_spec(out.spec, gen);
      check_index_dtypes(*out.model, contents.tensors);
      out.model->load_state_dict(contents.tensors, /*strict=*/true, Module::ShapeMismatch::Adopt);
    }
    // The adopted shapes must fit together: one sample through the model checks every op.
    flops_per_sample(*out.model, input_shape(out.spec));
  } catch (const nlohmann::json::exception& e) {
    fail("load_checkpoint: ", path, ": bad '", key, "' JSON (", e.what(), ")");
  } catch (const Error& e) {
    fail("load_checkpoint: ", path, ": ", e.what());
  }
  out.metadata = std::move(contents.metadata);
  return out;
}

}  // namespace shrink::nn
