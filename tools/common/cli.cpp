#include "tools/common/cli.h"
#include "tools/common/validators.h"

#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "core/error.h"

namespace shrink::tools {

void add_common_options(CLI::App& app, CommonOptions& options) {
  app.add_option("--seed", options.seed,
                 "Seed for initialisation, shuffling, dropout and sampling")
      ->check(tools::unsigned_64())->capture_default_str();
  // Bounded: OpenMP's runtime crashes on absurd team sizes.
  app.add_option("--threads", options.threads, "CPU threads (0 = all cores)")
      ->check(tools::in_range(0, 1024))->capture_default_str();
  app.add_option("--device", options.device, "cpu, cuda or cuda:N")->capture_default_str();
}

Device apply_common_options(const CommonOptions& options) {
  if (options.threads > 0) omp_set_num_threads(options.threads);
  const Device device = Device::parse(options.device);
  if (device.is_cuda())
    SHRINK_CHECK(cuda_available(), "--device ", options.device,
                 ": no CUDA device is available (this build ",
#ifdef SHRINK_WITH_CUDA
                 "has the CUDA backend, but no GPU was found)"
#else
                 "has no CUDA backend: nvcc was not found at configure time)"
#endif
    );
  return device;
}

void check_output_path(const std::string& out, const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  SHRINK_CHECK(!out.empty(), "--out: the output path is empty");
  const fs::path target(out);
  std::error_code ec;
  SHRINK_CHECK(!fs::is_directory(target, ec), "--out ", out, ": is a directory, not a file");
  const fs::path folder = target.has_parent_path() ? target.parent_path() : fs::path(".");
  SHRINK_CHECK(fs::is_directory(folder, ec), "--out ", out, ": the folder ", folder.string(),
               " does not exist");
  SHRINK_CHECK(::access(folder.c_str(), W_OK) == 0, "--out ", out, ": the folder ",
               folder.string(), " is not writable");
  // access() says yes to root almost anywhere (/proc, a read-only mount): create and remove a
  // file there, as the atomic write will, so that a run cannot end in a save that fails.
  const fs::path probe = folder / ("." + target.filename().string() + ".probe-" + std::to_string(::getpid()));
  const int fd = ::open(probe.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
  SHRINK_CHECK(fd >= 0, "--out ", out, ": cannot create a file in the folder ", folder.string(), " (",
               std::strerror(errno), ")");
  ::close(fd);
  ::unlink(probe.c_str());
  for (const std::string& input : inputs) {
    if (input.empty() || !fs::exists(input, ec)) continue;
    SHRINK_CHECK(!fs::exists(target, ec) || !fs::equivalent(target, input, ec), "--out ", out,
                 ": is the input ", input, "; write the result to another file");
  }
}

int guarded_main(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  // On a bad flag, print the error followed by the full list of valid flags.
  app.failure_message(CLI::FailureMessage::help);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return body();
  } catch (const std::exception& e) {
    // Messages raised in the tool's own code may start with its name already.
    std::string_view what = e.what();
    const std::string own = app.get_name() + ": ";
    if (what.starts_with(own)) what.remove_prefix(own.size());
    std::fprintf(stderr, "%s: error: %.*s\n", app.get_name().c_str(), static_cast<int>(what.size()), what.data());
    return 1;
  }
}

nn::BatchSource batches_of(datasets::DataLoader& loader) {
  return [&loader]() -> std::optional<nn::LabeledBatch> {
    auto batch = loader.next();
    if (!batch) return std::nullopt;
    return nn::LabeledBatch{batch->images, batch->labels};
  };
}

}  // namespace shrink::tools
