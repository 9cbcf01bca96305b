// The image flags of every tool that reads a data set: --input-size and --channels (how the
// images are sized at load time, datasets/image_options.h) and, for the tools that train,
// --augment (datasets/augment.h). A checkpoint trained on sized images records the sizing
// in its metadata (keys "input_size", "channels"); a tool given that checkpoint and no
// sizing flag sizes its data the same way.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "datasets/augment.h"
#include "datasets/dataset.h"
#include "datasets/loader.h"

namespace shrink::tools {

struct DataOptions {
  std::int64_t input_size = 0;  // 0: the checkpoint's recorded size, else as stored
  std::int64_t channels = 0;    // 0: the checkpoint's recorded count, else as stored
  std::string augment = "none";
};

// Adds --input-size and --channels.
void add_image_options(CLI::App& app, DataOptions& options);
// Adds --augment (training loaders only), validated by datasets::parse_augmentation.
void add_augment_option(CLI::App& app, DataOptions& options);

datasets::ImageOptions image_options(const DataOptions& options);
datasets::Augmentation augmentation(const DataOptions& options);

// The checkpoint metadata entries that record `image` (only the non-zero ones, so a run
// without sizing writes what it always did).
std::map<std::string, std::string> image_metadata(const datasets::ImageOptions& image);
// Takes each of input_size / channels still 0 from `metadata` (a checkpoint's); throws
// naming `checkpoint` and the key when a recorded value is not a valid count.
void image_options_from_checkpoint(DataOptions& options, const std::map<std::string, std::string>& metadata,
                                   const std::string& checkpoint);

// The flags as run settings (tools/common/resume.h), keyed by flag; with_augment adds
// "augment". read_data_settings reads them back, taking 0 / "none" for a state saved
// before the flags existed.
void add_data_settings(nlohmann::json& settings, const DataOptions& options, bool with_augment);
void read_data_settings(DataOptions& options, const nlohmann::json& settings, const std::string& dir,
                        bool with_augment);

// Sets the augmentation transform on `loader` (nothing for "none"), padding with the
// data set's normalised black.
void augment_loader(datasets::DataLoader& loader, const DataOptions& options, const datasets::Dataset& data);

}  // namespace shrink::tools
