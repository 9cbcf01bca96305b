#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/outside_json.h"
#include "core/stale_temp.h"

namespace shrink {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; a big-endian host would need byte swaps");

namespace {

// HuggingFace's reader refuses headers above 100 MB; so do we, before allocating.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

const char* dtype_code(DType t) {
  switch (t) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
  }
  return "?";
}

// How a file's dtype is stored and what it loads as. F32, F64 and I64 are read as they
// are; the others, common in PyTorch exports, are converted on load: F16 and BF16 to
// float32 (exactly: every half and bfloat16 value is a float32 value), I32, U8 and BOOL to
// int64.
enum class Stored { Native, F16, BF16, I32, U8, Bool };

struct FileType {
  const char* code;
  Stored stored;
  std::uint64_t bytes;  // per element in the file
  DType loads_as;
};

constexpr FileType kFileTypes[] = {
    {"F32", Stored::Native, 4, DType::Float32}, {"F64", Stored::Native, 8, DType::Float64},
    {"I64", Stored::Native, 8, DType::Int64},   {"F16", Stored::F16, 2, DType::Float32},
    {"BF16", Stored::BF16, 2, DType::Float32},  {"I32", Stored::I32, 4, DType::Int64},
    {"U8", Stored::U8, 1, DType::Int64},        {"BOOL", Stored::Bool, 1, DType::Int64},
};
constexpr const char* kSupported = "F32, F64, I64, F16, BF16, I32, U8, BOOL";

const FileType* parse_dtype(const std::string& code) {
  for (const auto& t : kFileTypes)
    if (code == t.code) return &t;
  return nullptr;
}

// IEEE 754 binary16 -> binary32: sign, 5-bit exponent (bias 15), 10-bit fraction.
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1fu, fraction = h & 0x3ffu, bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (fraction << 13);  // inf or nan (payload kept)
  } else if (exponent != 0) {
    bits = sign | ((exponent + 127 - 15) << 23) | (fraction << 13);
  } else if (fraction == 0) {
    bits = sign;  // signed zero
  } else {        // subnormal: fraction * 2^-24, normalised for binary32
    int shift = 0;
    while ((fraction & 0x400u) == 0) {
      fraction <<= 1;
      ++shift;
    }
    bits = sign | (static_cast<std::uint32_t>(127 - 15 + 1 - shift) << 23) | ((fraction & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

// `count` elements stored as `type` in `raw` -> the tensor they load as.
void convert(const std::string& file, const std::string& name, const FileType& type,
             const std::vector<unsigned char>& raw, Tensor& out) {
  const std::size_t n = static_cast<std::size_t>(out.numel());
  if (type.loads_as == DType::Float32) {
    float* dst = out.data<float>();
    for (std::size_t i = 0; i < n; ++i) {
      std::uint16_t v;
      std::memcpy(&v, raw.data() + 2 * i, 2);
      dst[i] = type.stored == Stored::F16 ? half_to_float(v)
                                          : std::bit_cast<float>(static_cast<std::uint32_t>(v) << 16);
    }
    return;
  }
  std::int64_t* dst = out.data<std::int64_t>();
  for (std::size_t i = 0; i < n; ++i) {
    if (type.stored == Stored::I32) {
      std::int32_t v;
      std::memcpy(&v, raw.data() + 4 * i, 4);
      dst[i] = v;
    } else {
      dst[i] = raw[i];
      SHRINK_CHECK(type.stored != Stored::Bool || raw[i] <= 1, "load_safetensors: ", file,
                   ": tensor '", name, "': BOOL element ", i, " is ", int{raw[i]},
                   ", not 0 or 1");
    }
  }
}

// ---- writing ----

// Owns the temporary file until commit(); the destructor removes it on any failure path.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path)
      : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())) {
    remove_stale_temps(path_);  // what killed writers of this path left behind
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail_errno("cannot create temporary file " + tmp_);
  }
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t bytes) {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
      const ssize_t n = ::write(fd_, p, bytes);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_errno("write failed");
      p += n;
      bytes -= static_cast<std::size_t>(n);
    }
  }

  // fsync makes the bytes durable before rename makes them visible: a crash leaves either
  // the old file or the complete new one, never a torn checkpoint.
  void commit() {
    if (::fsync(fd_) != 0) fail_errno("fsync failed");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail_errno("close failed");
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) fail_errno("rename from " + tmp_ + " failed");
    committed_ = true;
    // Persist the directory entry too (best effort: some filesystems refuse directory fsync).
    std::string dir = std::filesystem::path(path_).parent_path().string();
    const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  // The temporary file is removed on the way out (destructor); the target was never touched.
  [[noreturn]] void fail_errno(const std::string& what) {
    const int err = errno;
    struct stat st;
    const bool previous = ::stat(path_.c_str(), &st) == 0;
    fail("save_safetensors: ", path_, ": ", what, " (", std::strerror(err), "); ",
         previous ? "the previous file is unchanged" : "nothing was written");
  }
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

// ---- reading ----

struct Entry {
  std::string name;
  const FileType* type;
  Shape shape;
  std::uint64_t begin, end;
};

Entry parse_entry(const std::string& file, const std::string& name, const nlohmann::json& j,
                  std::uint64_t data_bytes) {
  auto bad = [&](const auto&... why) { fail("load_safetensors: ", file, ": tensor '", name, "': ", why...); };
  if (!j.is_object()) bad("entry is not an object");
  if (!j.contains("dtype") || !j["dtype"].is_string()) bad("missing or non-string 'dtype'");
  if (!j.contains("shape") || !j["shape"].is_array()) bad("missing or non-array 'shape'");
  if (!j.contains("data_offsets") || !j["data_offsets"].is_array() || j["data_offsets"].size() != 2)
    bad("'data_offsets' must be an array [begin, end]");
  if (j.size() != 3) bad("unexpected fields besides dtype, shape, data_offsets");

  Entry e{name, nullptr, {}, 0, 0};
  const std::string code = j["dtype"].get<std::string>();
  e.type = parse_dtype(code);
  if (!e.type) bad("unknown dtype '", code, "' (supported: ", kSupported, ")");

  // numel * element size, refusing anything that would overflow 64 bits.
  std::uint64_t bytes = e.type->bytes;
  for (const auto& d : j["shape"]) {
    if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers, got ", quote_json(j["shape"]));
    const auto dim = d.get<std::uint64_t>();
    if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      bad("dimension ", dim, " is too large");
    if (dim != 0 && bytes > std::numeric_limits<std::uint64_t>::max() / dim)
      bad("shape ", quote_json(j["shape"]), " is too large");
    bytes *= dim;
    e.shape.push_back(static_cast<std::int64_t>(dim));
  }
  const auto& offsets = j["data_offsets"];
  if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
    bad("data_offsets must be non-negative integers, got ", quote_json(offsets));
  e.begin = offsets[0].get<std::uint64_t>();
  e.end = offsets[1].get<std::uint64_t>();
  if (e.begin > e.end || e.end > data_bytes)
    bad("data_offsets ", quote_json(offsets), " out of range of the ", data_bytes,
        "-byte data section (is the file truncated?)");
  if (e.end - e.begin != bytes)
    bad("data_offsets ", quote_json(offsets), " span ", e.end - e.begin, " bytes but ", code, " ",
        shape_str(e.shape), " needs ", bytes);
  return e;
}

}  // namespace

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  NoGradGuard no_grad;
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> host;
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    SHRINK_CHECK(!name.empty() && name != "__metadata__", "save_safetensors: ", path,
                 ": invalid tensor name '", name, "'");
    SHRINK_CHECK(names.insert(name).second, "save_safetensors: ", path, ": tensor '", name,
                 "' given twice");
    SHRINK_CHECK(t.defined(), "save_safetensors: ", path, ": tensor '", name, "' is undefined");
    host.push_back(t.detach().to(Device::cpu()));
    const std::uint64_t end = offset + host.back().nbytes();
    header[name] = {{"dtype", dtype_code(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("save_safetensors: ", path, ": cannot encode the header (", e.what(), ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned

  AtomicFile file(path);
  const std::uint64_t n = text.size();
  file.write(&n, sizeof n);  // little-endian host (static_assert above)
  file.write(text.data(), text.size());
  for (const Tensor& t : host) file.write(t.raw_data(), t.nbytes());
  file.commit();
}

SafetensorsContents load_safetensors(const std::string& path) {
  std::error_code ec;
  SHRINK_CHECK(std::filesystem::is_regular_file(path, ec), "load_safetensors: ", path,
               " is not a readable file");
  std::ifstream in(path, std::ios::binary);
  SHRINK_CHECK(in.good(), "load_safetensors: cannot open ", path);
  in.seekg(0, std::ios::end);
  const auto file_size = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);
  SHRINK_CHECK(file_size >= 8, "load_safetensors: ", path, ": truncated header (the file has ",
               file_size, " bytes, the header length alone takes 8)");
  std::uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), sizeof n);
  SHRINK_CHECK(n <= file_size - 8, "load_safetensors: ", path, ": header length ", n,
               " exceeds the file size (", file_size, " bytes)");
  SHRINK_CHECK(n <= kMaxHeaderBytes, "load_safetensors: ", path, ": header length ", n,
               " exceeds the ", kMaxHeaderBytes, "-byte limit");
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  SHRINK_CHECK(in.good(), "load_safetensors: ", path, ": read error in the header");

  const nlohmann::json header = parse_outside_json(text, "load_safetensors: " + path + ": header");
  SHRINK_CHECK(header.is_object(), "load_safetensors: ", path, ": the header is not a JSON object");

  const std::uint64_t data_bytes = file_size - 8 - n;
  SafetensorsContents out;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      SHRINK_CHECK(value.is_object(), "load_safetensors: ", path, ": __metadata__ is not an object");
      for (const auto& [key, v] : value.items()) {
        SHRINK_CHECK(v.is_string(), "load_safetensors: ", path, ": metadata '", key,
                     "' is not a string");
        out.metadata[key] = v.get<std::string>();
      }
      continue;
    }
    // The writer refuses an empty name (no module path is empty): so does the reader.
    SHRINK_CHECK(!name.empty(), "load_safetensors: ", path, ": a tensor has an empty name");
    entries.push_back(parse_entry(path, name, value, data_bytes));
  }

  // The tensors must tile the data section exactly: sorted by offset, each starts where
  // the previous ended, and the last ends at the end of the file.
  std::vector<const Entry*> sorted;
  for (const auto& e : entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t at = 0;
  std::string previous = "the start of the data section";
  for (const Entry* e : sorted) {
    SHRINK_CHECK(e->begin >= at, "load_safetensors: ", path, ": tensor '", e->name,
                 "' overlaps ", previous, " (starts at ", e->begin, ", before ", at, ")");
    SHRINK_CHECK(e->begin == at, "load_safetensors: ", path, ": gap of ", e->begin - at,
                 " bytes before tensor '", e->name, "'");
    at = e->end;
    previous = "tensor '" + e->name + "'";
  }
  SHRINK_CHECK(at == data_bytes, "load_safetensors: ", path, ": ", data_bytes - at,
               " bytes after the last tensor are not described by the header");

  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.type->loads_as);
    in.seekg(static_cast<std::streamoff>(8 + n + e.begin));
    if (e.type->stored == Stored::Native) {
      in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(e.end - e.begin));
    } else {
      std::vector<unsigned char> raw(static_cast<std::size_t>(e.end - e.begin));
      in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
      if (in.good()) convert(path, e.name, *e.type, raw, t);
    }
    SHRINK_CHECK(in.good(), "load_safetensors: ", path, ": read error in tensor '", e.name, "'");
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

}  // namespace shrink
