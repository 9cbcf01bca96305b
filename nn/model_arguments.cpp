#include "nn/model_arguments.h"

#include <algorithm>

#include "core/error.h"
#include "core/strings.h"

namespace shrink::nn {

std::int64_t int_argument(const nlohmann::json& spec, const char* key, std::int64_t fallback, std::int64_t lo,
                          std::int64_t hi) {
  if (!spec.contains(key)) return fallback;
  SHRINK_CHECK(spec.at(key).is_number_integer(), "model spec: '", key, "' must be an integer in ", spec.dump());
  const auto v = spec.at(key).get<std::int64_t>();
  SHRINK_CHECK(v >= lo && v <= hi, "model spec: '", key, "' must be in [", lo, ", ", hi, "], got ", v);
  return v;
}

double number_argument(const nlohmann::json& spec, const char* key, double fallback, double lo, double hi) {
  if (!spec.contains(key)) return fallback;
  SHRINK_CHECK(spec.at(key).is_number(), "model spec: '", key, "' must be a number in ", spec.dump());
  const auto v = spec.at(key).get<double>();
  SHRINK_CHECK(v >= lo && v <= hi, "model spec: '", key, "' must be in [", lo, ", ", hi, "], got ", v);
  return v;
}

void check_parameter_total(const nlohmann::json& spec, std::int64_t count) {
  SHRINK_CHECK(count <= kMaxParameters, "model spec: ", spec.dump(), " has ", count, " parameters, more than ",
               kMaxParameters, " (the limit)");
}

bool flag_argument(const nlohmann::json& spec, const char* key, bool fallback) {
  if (!spec.contains(key)) return fallback;
  SHRINK_CHECK(spec.at(key).is_boolean(), "model spec: '", key, "' must be true or false in ", spec.dump());
  return spec.at(key).get<bool>();
}

std::string choice_argument(const nlohmann::json& spec, const char* key, const std::string& fallback,
                            const std::vector<std::string>& choices) {
  if (!spec.contains(key)) return fallback;
  SHRINK_CHECK(spec.at(key).is_string(), "model spec: '", key, "' must be a string in ", spec.dump());
  const auto v = spec.at(key).get<std::string>();
  SHRINK_CHECK(std::find(choices.begin(), choices.end(), v) != choices.end(), "model spec: '", key,
               "' must be one of ", join(choices, ", "), ", got '", v, "'");
  return v;
}

ImageArguments image_arguments(const nlohmann::json& spec, std::int64_t default_size, std::int64_t min_size) {
  return {int_argument(spec, "in_channels", default_size == 28 ? 1 : 3, 1, kMaxChannels),
          int_argument(spec, "input_size", default_size, min_size, kMaxInputSize),
          int_argument(spec, "classes", 10, 1, kMaxClasses)};
}

std::vector<std::string> with_image_keys(std::vector<std::string> keys) {
  for (const char* k : {"in_channels", "input_size", "classes"}) keys.push_back(k);
  return keys;
}

Shape image_shape(const ImageArguments& a) { return {a.channels, a.size, a.size}; }

}  // namespace shrink::nn
