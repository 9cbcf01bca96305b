// Reading a model spec's arguments (nn/models.h) with bounds, shared by the builder families:
// each value is checked by name before a tensor is shaped from it, so a crafted spec is refused
// with a message, never an enormous allocation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/shape.h"

namespace shrink::nn {

// Argument bounds: far beyond any real input, far below what overflows a size.
constexpr std::int64_t kMaxChannels = 4096, kMaxInputSize = 4096, kMaxClasses = 1 << 20;
// Weights and biases in all: a builder that can count its model refuses a spec above this
// before allocating anything (ffn-10000 has 7.9e6).
constexpr std::int64_t kMaxParameters = std::int64_t{1} << 32;

// Throws naming the spec when `count` (a builder's parameter_count) exceeds kMaxParameters.
void check_parameter_total(const nlohmann::json& spec, std::int64_t count);

// spec[key] as an integer in [lo, hi], or `fallback` when absent.
std::int64_t int_argument(const nlohmann::json& spec, const char* key, std::int64_t fallback, std::int64_t lo,
                          std::int64_t hi);
// spec[key] as a number in [lo, hi], or `fallback` when absent.
double number_argument(const nlohmann::json& spec, const char* key, double fallback, double lo, double hi);
// spec[key] as a boolean, or `fallback` when absent.
bool flag_argument(const nlohmann::json& spec, const char* key, bool fallback = false);
// spec[key] as one of `choices`, or `fallback` when absent.
std::string choice_argument(const nlohmann::json& spec, const char* key, const std::string& fallback,
                            const std::vector<std::string>& choices);

// The image every image builder takes: (in_channels, input_size, input_size) and the class count.
struct ImageArguments {
  std::int64_t channels, size, classes;
};
// in_channels defaults to 1 for a 28x28 default (the MNIST family), 3 otherwise.
ImageArguments image_arguments(const nlohmann::json& spec, std::int64_t default_size, std::int64_t min_size);
// The spec keys image_arguments reads, after `keys`.
std::vector<std::string> with_image_keys(std::vector<std::string> keys);
Shape image_shape(const ImageArguments& a);

}  // namespace shrink::nn
