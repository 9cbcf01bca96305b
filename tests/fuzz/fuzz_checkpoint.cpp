// libFuzzer target: load_checkpoint (nn/checkpoint.h) on arbitrary bytes: the safetensors
// reader, the metadata, the model spec inside it (v2 "model" or v1 "architecture"), the
// comparison of the saved shapes with that spec, the build and the load. Every input must
// load or throw shrink::Error. A loaded model holds only what the file holds: its state is
// no larger than the file (so a small file never builds the large model its spec names),
// and its spec can be asked for again.
#include <cstdint>

#include "core/error.h"
#include "core/random.h"
#include "nn/checkpoint.h"
#include "nn/models.h"
#include "tests/fuzz/fuzz_input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static shrink::fuzz::InputFile file;
  const std::string& path = file.hold(data, size);
  try {
    shrink::Generator gen(0);
    const shrink::nn::Checkpoint checkpoint = shrink::nn::load_checkpoint(path, gen);
    SHRINK_FUZZ_ASSERT(checkpoint.model != nullptr);
    std::uint64_t elements = 0;
    for (const auto& [name, t] : checkpoint.model->state_dict())
      elements += static_cast<std::uint64_t>(t.numel());
    SHRINK_FUZZ_ASSERT(elements <= size);
    shrink::nn::model_spec(*checkpoint.model);
    shrink::fuzz::InputTally::record(data, size, /*refused=*/false);
  } catch (const shrink::Error&) {
    shrink::fuzz::InputTally::record(data, size, /*refused=*/true);
  }
  return 0;
}
