#include "nn/sequential.h"

namespace shrink::nn {

Sequential::Sequential(std::vector<std::shared_ptr<Module>> layers) {
  for (auto& layer : layers) push_back(std::move(layer));
}

void Sequential::push_back(std::shared_ptr<Module> layer) {
  register_module(std::to_string(size()), std::move(layer));
}

void Sequential::push_back(const std::string& name, std::shared_ptr<Module> layer) {
  register_module(name, std::move(layer));
}

std::shared_ptr<Module> Sequential::operator[](std::size_t i) const {
  SHRINK_CHECK(i < size(), "Sequential: index ", i, " out of range for ", size(), " layers");
  return named_children()[i].second;
}

std::vector<std::pair<std::string, std::string>> Sequential::sole_reader_pairs() const {
  std::vector<std::pair<std::string, std::string>> pairs;
  const auto& c = named_children();
  for (std::size_t i = 0; i + 1 < c.size(); ++i) pairs.emplace_back(c[i].first, c[i + 1].first);
  return pairs;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& [name, layer] : named_children()) y = (*layer)(y);
  return y;
}

}  // namespace shrink::nn
