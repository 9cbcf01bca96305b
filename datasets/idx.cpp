#include "datasets/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/error.h"

namespace shrink::datasets {

namespace {

// Closes the zlib handle on every path out, errors included.
struct GzFile {
  gzFile file;
  explicit GzFile(gzFile f) : file(f) {}
  ~GzFile() {
    if (file) gzclose(file);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;
};

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

std::string hex8(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", v);
  return buf;
}

std::uint32_t big_endian_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
         (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// Reads up to `bytes` into `dst`; returns how many arrived before the end of the data.
// A gzip stream cut short (Z_BUF_ERROR) counts as an early end, so the caller reports it
// as truncation with the byte counts; any other zlib error is fatal here.
std::size_t read_some(gzFile f, std::uint8_t* dst, std::size_t bytes, const std::string& path) {
  std::size_t got = 0;
  while (got < bytes) {
    const auto chunk = static_cast<unsigned>(std::min<std::size_t>(bytes - got, 1u << 30));
    const int n = gzread(f, dst + got, chunk);
    if (n < 0) {
      int code = Z_OK;
      const char* message = gzerror(f, &code);
      if (code == Z_BUF_ERROR) break;
      fail(path, ": read error: ", message);
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  return got;
}

// Element count the header promises, refused above kMaxIdxBytes: a 2 MB .gz claiming
// 1x46341x46341 would otherwise decompress 2 GB and then need 8.6 GB for the float copy.
std::uint64_t checked_count(const Shape& dims, const std::string& path) {
  std::uint64_t count = 1;
  for (auto d : dims) {
    // Each factor is below 2^32 and count stays at most 2^28 here: no overflow.
    count *= static_cast<std::uint64_t>(d);
    if (count > kMaxIdxBytes)
      fail(path, ": header promises dimensions ", shape_str(dims), ", more than the ",
           kMaxIdxBytes, " elements (bytes) an IDX file may hold here");
  }
  return count;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  errno = 0;
  GzFile in(gzopen(path.c_str(), "rb"));
  if (!in.file)
    fail(path, ": cannot open: ", errno ? std::strerror(errno) : "zlib could not allocate");

  std::uint8_t magic[4];
  const std::size_t magic_got = read_some(in.file, magic, 4, path);
  if (magic_got < 4)
    fail(path, ": not an IDX file: only ", magic_got, " bytes, shorter than the 4-byte magic number");
  const std::uint32_t magic_value = big_endian_u32(magic);
  if (magic[0] != 0 || magic[1] != 0)
    fail(path, ": not an IDX file: bad magic number ", hex32(magic_value),
         " (IDX files start with two zero bytes)");
  if (magic[2] != kIdxUnsignedByte)
    fail(path, ": bad magic number ", hex32(magic_value), ": element type ", hex8(magic[2]),
         " is not supported (only 0x08, unsigned byte)");
  const int ndims = magic[3];
  if (ndims < 1 || ndims > 4)
    fail(path, ": bad magic number ", hex32(magic_value), ": ", ndims,
         " dimensions (supported: 1 to 4)");

  std::uint8_t dim_bytes[16];
  const std::size_t dims_got = read_some(in.file, dim_bytes, 4 * ndims, path);
  if (dims_got < static_cast<std::size_t>(4 * ndims))
    fail(path, ": truncated: header promises ", ndims, " dimensions (", 4 * ndims,
         " bytes), found ", dims_got);
  IdxArray array;
  for (int i = 0; i < ndims; ++i) array.dims.push_back(big_endian_u32(dim_bytes + 4 * i));

  const std::uint64_t promised = checked_count(array.dims, path);
  // Grow in slices as the data arrives rather than trusting the header with one big
  // allocation up front (the vector's own doubling keeps the copies few).
  constexpr std::uint64_t kSlice = std::uint64_t{1} << 20;
  std::uint64_t got = 0;
  while (got < promised) {
    const std::uint64_t want = std::min(promised - got, kSlice);
    array.data.resize(got + want);
    const std::size_t n = read_some(in.file, array.data.data() + got, want, path);
    got += n;
    if (n < want) break;
  }
  if (got < promised)
    fail(path, ": truncated: header promises ", promised, " bytes of data (dimensions ",
         shape_str(array.dims), "), found ", got);

  // Trailing bytes are counted up to a bound: a gzip stream could decompress gigabytes.
  constexpr std::uint64_t kCountedExtra = 1 << 16;
  std::uint64_t extra = 0;
  std::uint8_t scratch[4096];
  while (extra <= kCountedExtra) {
    const std::size_t n = read_some(in.file, scratch, sizeof scratch, path);
    if (n == 0) break;
    extra += n;
  }
  // A gzip stream that stops after the data but before its checksum trailer is still a
  // cut-off download; zlib reports it only through the error state.
  int code = Z_OK;
  const char* message = gzerror(in.file, &code);
  if (code == Z_BUF_ERROR) fail(path, ": truncated: the gzip stream ends early (", message, ")");
  if (extra > 0)
    fail(path, ": trailing data: ", extra > kCountedExtra ? "more than " : "",
         std::min(extra, kCountedExtra), " bytes after the ", promised,
         " bytes of data the header promises (dimensions ", shape_str(array.dims), ")");
  return array;
}

void write_idx(const std::string& path, const IdxArray& array) {
  const auto ndims = array.dims.size();
  SHRINK_CHECK(ndims >= 1 && ndims <= 4, "write_idx: ", path, ": needs 1 to 4 dimensions, got ",
               shape_str(array.dims));
  for (auto d : array.dims)
    SHRINK_CHECK(d >= 0 && d <= std::numeric_limits<std::uint32_t>::max(), "write_idx: ", path,
                 ": dimension out of uint32 range in ", shape_str(array.dims));
  SHRINK_CHECK(static_cast<std::uint64_t>(numel(array.dims)) == array.data.size(), "write_idx: ",
               path, ": dimensions ", shape_str(array.dims), " need ", numel(array.dims),
               " bytes, data has ", array.data.size());

  std::vector<std::uint8_t> header = {0, 0, kIdxUnsignedByte, static_cast<std::uint8_t>(ndims)};
  for (auto d : array.dims)
    for (int shift = 24; shift >= 0; shift -= 8)
      header.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(d) >> shift));

  // "T" asks zlib for a plain (transparent) write, so both forms share this code.
  const bool gz = path.size() >= 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  errno = 0;
  gzFile out = gzopen(path.c_str(), gz ? "wb6" : "wbT");
  if (!out) fail("write_idx: ", path, ": cannot open for writing: ", std::strerror(errno));
  auto write = [&](const std::uint8_t* p, std::size_t bytes) {
    while (bytes > 0) {
      const auto chunk = static_cast<unsigned>(std::min<std::size_t>(bytes, 1u << 30));
      const int n = gzwrite(out, p, chunk);
      if (n <= 0) {
        int code = Z_OK;
        const std::string message = gzerror(out, &code);
        gzclose(out);
        fail("write_idx: ", path, ": write error: ", message);
      }
      p += n;
      bytes -= static_cast<std::size_t>(n);
    }
  };
  write(header.data(), header.size());
  write(array.data.data(), array.data.size());
  if (gzclose(out) != Z_OK) fail("write_idx: ", path, ": error closing the file");
}

}  // namespace shrink::datasets
