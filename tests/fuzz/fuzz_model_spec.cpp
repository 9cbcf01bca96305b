// libFuzzer target: the model-spec parsers (nn/models.h). An input starting with '{' is a
// spec in JSON (as a checkpoint or a file holds it), anything else a command-line text
// ("lenet-300-100", "mlp:784-300-10:gelu"). Every input must parse or throw shrink::Error.
// A spec that parses is built shape-only (fills off) when its counted size is small (the
// count itself is what keeps a spec naming a 2^32-parameter model from being built), and
// the built model must hold no more than that count and give back a spec that builds.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/outside_json.h"
#include "core/random.h"
#include "nn/models.h"
#include "tests/fuzz/fuzz_input_file.h"

namespace {

// Models up to 2^22 values (16 MiB of float32) are built; larger ones only counted.
constexpr std::int64_t kBuildLimit = std::int64_t{1} << 22;

void build_shape_only(const nlohmann::json& spec) {
  const std::int64_t count = shrink::nn::spec_parameter_count(spec);
  SHRINK_FUZZ_ASSERT(count >= -1);
  if (count < 0 || count > kBuildLimit) return;
  shrink::Generator gen(0);
  shrink::FillsOff no_fills(gen);
  const auto model = shrink::nn::build_from_spec(spec, gen);
  std::int64_t held = 0;
  for (const auto& [name, t] : model->state_dict()) held += t.numel();
  SHRINK_FUZZ_ASSERT(held <= count);
  const nlohmann::json again = shrink::nn::model_spec(*model);
  SHRINK_FUZZ_ASSERT(shrink::nn::spec_parameter_count(again) == count);
  shrink::nn::input_shape(again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const nlohmann::json spec = !text.empty() && text[0] == '{'
                                    ? shrink::parse_outside_json(text, "model spec")
                                    : shrink::nn::parse_model_text(text);
    build_shape_only(spec);
    shrink::fuzz::InputTally::record(data, size, /*refused=*/false);
  } catch (const shrink::Error&) {
    shrink::fuzz::InputTally::record(data, size, /*refused=*/true);
  }
  return 0;
}
