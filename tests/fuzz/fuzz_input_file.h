// The fuzz input as a file: an in-memory file (memfd) named by /proc/self/fd/N, rewritten
// for each input. The readers run exactly the code a user's file goes through (open, size,
// seek, read, zlib) without a disk write per input.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_set>

namespace shrink::fuzz {

class InputFile {
 public:
  InputFile() {
    fd_ = ::memfd_create("shrink-fuzz-input", MFD_CLOEXEC);
    if (fd_ < 0) die("memfd_create");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Replaces the file's contents with `size` bytes at `data`; returns its path.
  const std::string& hold(const std::uint8_t* data, std::size_t size) {
    if (::ftruncate(fd_, 0) != 0) die("ftruncate");
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) die("pwrite");
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }

 private:
  [[noreturn]] static void die(const char* what) {
    std::perror(what);
    std::abort();
  }
  int fd_ = -1;
  std::string path_;
};

// Counts the distinct inputs (by a 64-bit FNV-1a hash of their bytes) a target refused with a
// shrink::Error and those it accepted, and prints both when the run ends; scripts/fuzz.sh
// reads the line ("shrink-fuzz: N distinct inputs refused, M distinct accepted").
class InputTally {
 public:
  static void record(const std::uint8_t* data, std::size_t size, bool refused) {
    std::uint64_t h = 14695981039346656037ull;
    for (std::size_t i = 0; i < size; ++i) h = (h ^ data[i]) * 1099511628211ull;
    (refused ? instance().refused_ : instance().accepted_).insert(h);
  }
  ~InputTally() {
    std::fprintf(stderr, "shrink-fuzz: %zu distinct inputs refused, %zu distinct accepted\n",
                 refused_.size(), accepted_.size());
  }

 private:
  static InputTally& instance() {
    static InputTally tally;
    return tally;
  }
  std::unordered_set<std::uint64_t> refused_, accepted_;
};

// A broken invariant on an accepted input: abort, so libFuzzer keeps the reproducer.
#define SHRINK_FUZZ_ASSERT(cond)                                                   \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, \
                   __LINE__);                                                      \
      std::abort();                                                                \
    }                                                                              \
  } while (0)

}  // namespace shrink::fuzz
