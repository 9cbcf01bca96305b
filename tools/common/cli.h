// Pieces every binary shares: the common flags (--seed, --threads, --device), the error
// boundary that turns exceptions into a message and exit code 1, and the adapter from the
// data loader to the training loop's batch source.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/device.h"
#include "datasets/loader.h"
#include "nn/training.h"

namespace shrink::tools {

struct CommonOptions {
  std::uint64_t seed = 0;
  int threads = 0;  // 0: OpenMP's default (all cores)
  std::string device = "cpu";
};

void add_common_options(CLI::App& app, CommonOptions& options);
// Applies --threads and resolves --device (failing clearly when CUDA is not available).
Device apply_common_options(const CommonOptions& options);

// Fails before any work when `--out` cannot be written: its folder must exist and be a
// writable directory, and it must not name one of the run's input files (a tool never
// writes over what it reads). `inputs` may hold names that are not files (model specs).
void check_output_path(const std::string& out, const std::vector<std::string>& inputs);

// Parses argv and runs `body`, printing "<tool>: error: ..." and returning 1 on any error;
// a bad or unknown flag prints the error and the list of valid flags (the help text).
int guarded_main(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

// Yields the loader's batches for the epoch it was started on.
nn::BatchSource batches_of(datasets::DataLoader& loader);

}  // namespace shrink::tools
