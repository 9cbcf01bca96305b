#include "nn/sequential.h"

namespace shrink::nn {

Sequential::Sequential(std::vector<std::shared_ptr<Module>> layers) {
  for (auto& layer : layers) push_back(std::move(layer));
}

void Sequential::push_back(std::shared_ptr<Module> layer) {
  register_module(std::to_string(size()), std::move(layer));
}

std::shared_ptr<Module> Sequential::operator[](std::size_t i) const {
  SHRINK_CHECK(i < size(), "Sequential: index ", i, " out of range for ", size(), " layers");
  return named_children()[i].second;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& [name, layer] : named_children()) y = layer->forward(y);
  return y;
}

Shape Sequential::output_shape(const Shape& input_shape) const {
  Shape shape = input_shape;
  for (auto& [name, layer] : named_children()) shape = layer->output_shape(shape);
  return shape;
}

std::int64_t Sequential::flops(const Shape& input_shape) const {
  Shape shape = input_shape;
  std::int64_t total = 0;
  for (auto& [name, layer] : named_children()) {
    total += layer->flops(shape);
    shape = layer->output_shape(shape);
  }
  return total;
}

}  // namespace shrink::nn
