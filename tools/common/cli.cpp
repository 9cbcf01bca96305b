#include "tools/common/cli.h"

#include <omp.h>

#include <cstdio>
#include <exception>

#include "core/error.h"

namespace shrink::tools {

void add_common_options(CLI::App& app, CommonOptions& options) {
  app.add_option("--seed", options.seed,
                 "Seed for initialisation, shuffling, dropout and sampling")->capture_default_str();
  app.add_option("--threads", options.threads, "CPU threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
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
    std::fprintf(stderr, "%s: error: %s\n", app.get_name().c_str(), e.what());
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
