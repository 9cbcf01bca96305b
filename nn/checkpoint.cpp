#include "nn/checkpoint.h"

#include "core/safetensors.h"
#include "nn/models.h"

namespace shrink::nn {

void save_checkpoint(const std::string& path, const Module& model,
                     const nlohmann::json& architecture,
                     const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> metadata = extra;
  for (const char* reserved : {"format", "architecture"})
    SHRINK_CHECK(!extra.count(reserved), "save_checkpoint: ", path, ": metadata key '", reserved,
                 "' is reserved");
  metadata["format"] = kCheckpointFormat;
  metadata["architecture"] = architecture.dump();
  NamedTensors tensors = model.named_parameters();
  for (auto& entry : model.named_buffers()) tensors.push_back(entry);
  save_safetensors(path, tensors, metadata);
}

Checkpoint load_checkpoint(const std::string& path, Generator& gen) {
  SafetensorsContents contents = load_safetensors(path);
  auto format = contents.metadata.find("format");
  SHRINK_CHECK(format != contents.metadata.end() && format->second == kCheckpointFormat,
               "load_checkpoint: ", path, ": not a shrink checkpoint (metadata 'format' is ",
               format == contents.metadata.end() ? "missing" : "'" + format->second + "'",
               ", expected '", kCheckpointFormat, "')");
  auto arch = contents.metadata.find("architecture");
  SHRINK_CHECK(arch != contents.metadata.end(), "load_checkpoint: ", path,
               ": metadata has no 'architecture'");
  Checkpoint out;
  try {
    out.architecture = nlohmann::json::parse(arch->second);
    out.model = build_from_architecture(out.architecture, gen);
    out.model->load_state_dict(contents.tensors, /*strict=*/true);
  } catch (const nlohmann::json::exception& e) {
    fail("load_checkpoint: ", path, ": bad architecture JSON (", e.what(), ")");
  } catch (const Error& e) {
    fail("load_checkpoint: ", path, ": ", e.what());
  }
  out.metadata = std::move(contents.metadata);
  return out;
}

}  // namespace shrink::nn
