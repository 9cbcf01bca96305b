#include "prune/tap.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/error.h"
#include "nn/sequential.h"

namespace shrink::prune {

namespace {

const nn::Sequential& chain_of(const nn::Module& model, const char* op) {
  const auto* chain = dynamic_cast<const nn::Sequential*>(&model);
  SHRINK_CHECK(chain != nullptr, op, ": the model is a ", model.type_name(),
               "; taps support feed-forward chains (Sequential)");
  return *chain;
}

}  // namespace

std::map<std::string, Tap> capture(nn::Module& model, const Tensor& inputs,
                                   const std::vector<std::string>& paths) {
  const auto& chain = chain_of(model, "capture");
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  std::map<std::string, Tap> taps;
  Tensor x = inputs;
  for (const auto& [name, layer] : chain.named_children()) {
    Tensor y = (*layer)(x);
    if (std::find(paths.begin(), paths.end(), name) != paths.end()) taps[name] = {x, y};
    x = y;
  }
  model.train(was_training);
  for (const auto& p : paths)
    SHRINK_CHECK(taps.count(p), "capture: the model has no layer '", p, "'");
  return taps;
}

Tensor run_range(nn::Module& model, const Tensor& x, const std::string& first, const std::string& last) {
  const auto& chain = chain_of(model, "run_range");
  Tensor y = x;
  bool running = false, done = false;
  for (const auto& [name, layer] : chain.named_children()) {
    if (name == first) running = true;
    if (running) y = (*layer)(y);
    if (running && name == last) {
      done = true;
      break;
    }
  }
  SHRINK_CHECK(done, "run_range: layers '", first, "'..'", last, "' are not a range of the model");
  return y;
}

}  // namespace shrink::prune
