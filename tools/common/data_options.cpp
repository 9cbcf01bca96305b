#include "tools/common/data_options.h"

#include <charconv>

#include "core/error.h"
#include "datasets/image_options.h"
#include "tools/common/resume.h"
#include "tools/common/validators.h"

namespace shrink::tools {

namespace {

constexpr const char* kInputSizeKey = "input_size";
constexpr const char* kChannelsKey = "channels";

std::int64_t recorded_count(const std::map<std::string, std::string>& metadata, const char* key,
                            std::int64_t max, const std::string& checkpoint) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return 0;
  const std::string& text = it->second;
  std::int64_t value = -1;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  SHRINK_CHECK(ec == std::errc() && ptr == text.data() + text.size() && value >= 0 && value <= max, checkpoint,
               ": metadata `", key, "` is `", text, "`, not a count from 0 to ", max);
  return value;
}

}  // namespace

void add_image_options(CLI::App& app, DataOptions& options) {
  app.add_option("--input-size", options.input_size,
                 "Pad images (centred, black) to SxS, e.g. 32 for the CIFAR-style models; 0: a given "
                 "checkpoint's recorded size, else as stored")
      ->check(in_range(0, static_cast<double>(datasets::kMaxInputSize)))->capture_default_str();
  app.add_option("--channels", options.channels,
                 "Replicate grey images to C channels, e.g. 3; 0: a given checkpoint's recorded count, "
                 "else as stored")
      ->check(in_range(0, static_cast<double>(datasets::kMaxChannels)))->capture_default_str();
}

void add_augment_option(CLI::App& app, DataOptions& options) {
  app.add_option("--augment", options.augment,
                 "Training augmentation: none, or a comma list of crop:N (pad N pixels, random crop back) "
                 "and flip (random horizontal flip), e.g. crop:4,flip")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            try {
              datasets::parse_augmentation(text);
            } catch (const Error& e) {
              return e.what();
            }
            return "";
          },
          "SPEC", "augmentation"))
      ->capture_default_str();
}

datasets::ImageOptions image_options(const DataOptions& options) {
  return {options.input_size, options.channels};
}

datasets::Augmentation augmentation(const DataOptions& options) {
  return datasets::parse_augmentation(options.augment);
}

std::map<std::string, std::string> image_metadata(const datasets::ImageOptions& image) {
  std::map<std::string, std::string> entries;
  if (image.input_size > 0) entries[kInputSizeKey] = std::to_string(image.input_size);
  if (image.channels > 0) entries[kChannelsKey] = std::to_string(image.channels);
  return entries;
}

void image_options_from_checkpoint(DataOptions& options, const std::map<std::string, std::string>& metadata,
                                   const std::string& checkpoint) {
  if (options.input_size == 0)
    options.input_size = recorded_count(metadata, kInputSizeKey, datasets::kMaxInputSize, checkpoint);
  if (options.channels == 0)
    options.channels = recorded_count(metadata, kChannelsKey, datasets::kMaxChannels, checkpoint);
}

void add_data_settings(nlohmann::json& settings, const DataOptions& options, bool with_augment) {
  settings["input-size"] = options.input_size;
  settings["channels"] = options.channels;
  if (with_augment) settings["augment"] = options.augment;
}

void read_data_settings(DataOptions& options, const nlohmann::json& s, const std::string& dir, bool with_augment) {
  options.input_size = s.contains("input-size") ? saved_setting<std::int64_t>(s, "input-size", dir) : 0;
  options.channels = s.contains("channels") ? saved_setting<std::int64_t>(s, "channels", dir) : 0;
  if (with_augment) options.augment = s.contains("augment") ? saved_setting<std::string>(s, "augment", dir) : "none";
  SHRINK_CHECK(options.input_size >= 0 && options.input_size <= datasets::kMaxInputSize && options.channels >= 0 &&
                   options.channels <= datasets::kMaxChannels,
               "--resume ", dir, ": saved input-size ", options.input_size, " / channels ", options.channels,
               " out of range");
  if (with_augment) {
    try {
      datasets::parse_augmentation(options.augment);
    } catch (const Error& e) {
      fail("--resume ", dir, ": saved augment: ", e.what());
    }
  }
}

void augment_loader(datasets::DataLoader& loader, const DataOptions& options, const datasets::Dataset& data) {
  const datasets::Augmentation a = augmentation(options);
  if (a.enabled()) loader.set_transform(datasets::augmentation_transform(a, datasets::black_values(data)));
}

}  // namespace shrink::tools
