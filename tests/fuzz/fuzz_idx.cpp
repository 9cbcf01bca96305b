// libFuzzer target: read_idx (datasets/idx.h), raw and gzip. The first input byte picks
// the form: odd, the rest of the input is gzip-compressed before it is read, so mutations
// explore the IDX structure behind a valid gzip stream; even, the rest is read as it is
// (raw IDX, or a gzip stream whose own bytes are mutated). Every input must load or throw
// shrink::Error; a loaded array holds exactly what its dimensions promise, within the
// reader's bound.
#include <zlib.h>

#include <cstdint>
#include <vector>

#include "core/error.h"
#include "datasets/idx.h"
#include "tests/fuzz/fuzz_input_file.h"

namespace {

std::vector<std::uint8_t> gzip(const std::uint8_t* data, std::size_t size) {
  z_stream z{};
  // windowBits 15 + 16: a gzip wrapper, as gzopen writes.
  SHRINK_FUZZ_ASSERT(deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<std::uint8_t> out(deflateBound(&z, static_cast<uLong>(size)) + 32);
  z.next_in = const_cast<std::uint8_t*>(data);
  z.avail_in = static_cast<uInt>(size);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  SHRINK_FUZZ_ASSERT(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static shrink::fuzz::InputFile file;
  const bool compress = data[0] & 1;
  const std::vector<std::uint8_t> packed = compress ? gzip(data + 1, size - 1) : std::vector<std::uint8_t>();
  const std::string& path =
      compress ? file.hold(packed.data(), packed.size()) : file.hold(data + 1, size - 1);
  try {
    const shrink::datasets::IdxArray array = shrink::datasets::read_idx(path);
    SHRINK_FUZZ_ASSERT(array.dims.size() >= 1 && array.dims.size() <= 4);
    SHRINK_FUZZ_ASSERT(static_cast<std::uint64_t>(shrink::numel(array.dims)) == array.data.size());
    SHRINK_FUZZ_ASSERT(array.data.size() <= shrink::datasets::kMaxIdxBytes);
    shrink::fuzz::InputTally::record(data, size, /*refused=*/false);
  } catch (const shrink::Error&) {
    shrink::fuzz::InputTally::record(data, size, /*refused=*/true);
  }
  return 0;
}
