// libFuzzer target: load_safetensors (core/safetensors.h) on arbitrary bytes. Every input
// must load or throw shrink::Error; a loaded file's tensors can hold no more elements than
// the file has bytes (the tensors tile the data section, at least one byte per element).
#include <cstdint>

#include "core/error.h"
#include "core/safetensors.h"
#include "tests/fuzz/fuzz_input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static shrink::fuzz::InputFile file;
  const std::string& path = file.hold(data, size);
  try {
    const shrink::SafetensorsContents contents = shrink::load_safetensors(path);
    std::uint64_t elements = 0;
    for (const auto& [name, t] : contents.tensors) {
      SHRINK_FUZZ_ASSERT(!name.empty() && name != "__metadata__");
      SHRINK_FUZZ_ASSERT(t.defined() && t.device().is_cpu());
      elements += static_cast<std::uint64_t>(t.numel());
    }
    SHRINK_FUZZ_ASSERT(elements <= size);
    shrink::fuzz::InputTally::record(data, size, /*refused=*/false);
  } catch (const shrink::Error&) {
    shrink::fuzz::InputTally::record(data, size, /*refused=*/true);
  }
  return 0;
}
