#include "nn/sequential.h"

#include "core/ops.h"
#include "nn/conv_fusion.h"
#include "nn/residual.h"

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

namespace {

// The chain weights of the consecutive `Block`s from layers[first] on that give theirs.
template <class Block, class Weights>
std::vector<Weights> chain_from(const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& layers,
                                std::size_t first) {
  std::vector<Weights> chain;
  for (std::size_t j = first; j < layers.size(); ++j) {
    const auto* block = dynamic_cast<const Block*>(layers[j].second.get());
    std::optional<Weights> w = block ? block->chain_weights() : std::nullopt;
    if (!w) break;
    chain.push_back(*w);
  }
  return chain;
}

}  // namespace

Tensor Sequential::run_layers(const Tensor& x, const Tensor& residual, bool& added) {
  const auto& layers = named_children();
  Tensor y = x;
  added = false;
  for (std::size_t i = 0; i < layers.size();) {
    // Consecutive residual blocks that a chain op can run: one call for them all.
    if (const auto chain = chain_from<BasicBlock, ResidualBlockWeights>(layers, i); !chain.empty()) {
      y = conv2d_residual_chain(y, chain);
      i += chain.size();
      continue;
    }
    if (const auto chain = chain_from<InvertedResidual, InvertedResidualWeights>(layers, i); !chain.empty()) {
      y = inverted_residual_chain(y, chain);
      i += chain.size();
      continue;
    }
    const std::optional<ConvRun> run = conv_run(layers, i);
    if (!run) {
      y = (*layers[i++].second)(y);
      continue;
    }
    const bool last = i + run->length == layers.size();
    const bool add_here = last && residual.defined() && !run->activation;
    y = *fused_conv(*run->conv, run->norm, run->activation, y, add_here ? residual : Tensor());
    added = add_here;
    i += run->length;
  }
  return y;
}

Tensor Sequential::forward(const Tensor& x) {
  bool added = false;
  return run_layers(x, Tensor(), added);
}

Tensor Sequential::call_then_add(const Tensor& x, const Tensor& residual) {
  if (has_hooks()) return (*this)(x) + residual;
  bool added = false;
  Tensor y = run_layers(x, residual, added);
  return added ? y : y + residual;
}

}  // namespace shrink::nn
