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

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& [name, layer] : named_children()) y = (*layer)(y);
  return y;
}

}  // namespace shrink::nn
