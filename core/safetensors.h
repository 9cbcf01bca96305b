// safetensors files, exactly as HuggingFace specifies them
// (https://huggingface.co/docs/safetensors): an 8-byte little-endian u64 N, then N bytes
// of UTF-8 JSON
//   {"__metadata__": {string: string},
//    "<name>": {"dtype": "F32"|"F64"|"I64", "shape": [...], "data_offsets": [begin, end]}}
// padded with spaces to a multiple of 8, then the raw little-endian tensor bytes; offsets
// are relative to the start of that data section, which the tensors cover without gaps.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace shrink {

struct SafetensorsContents {
  std::map<std::string, std::string> metadata;
  std::map<std::string, Tensor> tensors;  // on the CPU
};

// Writes `tensors` (in the given order; moved to the CPU first) and `metadata` to `path`
// atomically: into `path.tmp.<pid>`, fsync, then rename over `path`. Throws shrink::Error
// naming the file on any failure, leaving no temporary file behind.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads and validates a file. Besides F32, F64 and I64 (what save_safetensors writes) it
// reads F16 and BF16 (converted to float32) and I32, U8 and BOOL (converted to int64, a
// BOOL byte other than 0 or 1 refused), as files exported from PyTorch often hold them.
// Anything malformed (truncated header, header length beyond
// the file, bad JSON, unknown dtype, offsets out of range, overlapping, leaving gaps or
// inconsistent with the shape) throws shrink::Error naming the file and the problem.
SafetensorsContents load_safetensors(const std::string& path);

}  // namespace shrink
