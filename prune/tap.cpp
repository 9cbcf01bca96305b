#include "prune/tap.h"

#include <set>

#include "core/autograd.h"
#include "core/error.h"
#include "nn/sequential.h"

namespace shrink::prune {

namespace {

// Thrown by a hook once everything wanted is captured; caught by capture() only.
struct StopForward {};

}  // namespace

std::map<std::string, Tap> capture(nn::Module& model, const Tensor& inputs, const std::vector<std::string>& paths) {
  const std::set<std::string> wanted(paths.begin(), paths.end());
  std::map<std::string, Tap> taps;
  std::vector<nn::HookHandle> hooks;
  for (const std::string& path : wanted)
    hooks.push_back(model.child(path)->register_forward_hook(
        [&, path](nn::Module&, const Tensor& in, Tensor& out) {
          if (taps.count(path)) return;
          taps[path] = {in, out};
          if (taps.size() == wanted.size()) throw StopForward{};
        }));
  const bool was_training = model.is_training();
  model.eval();
  try {
    NoGradGuard no_grad;
    model(inputs);
  } catch (const StopForward&) {
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  for (const std::string& p : wanted)
    SHRINK_CHECK(taps.count(p), "capture: the forward pass never called layer '", p, "'");
  return taps;
}

Tensor run_with_replaced(nn::Module& model, const Tensor& x, const std::string& path,
                         const std::function<Tensor(const Tensor& input, const Tensor& output)>& replace) {
  bool done = false;
  nn::HookHandle hook = model.child(path)->register_forward_hook([&](nn::Module&, const Tensor& in, Tensor& out) {
    if (done) return;
    done = true;
    out = replace(in, out);
  });
  Tensor y = model(x);
  SHRINK_CHECK(done, "run_with_replaced: the forward pass never called layer '", path, "'");
  return y;
}

Tensor run_range(nn::Module& model, const Tensor& x, const std::string& first, const std::string& last) {
  const auto* chain = dynamic_cast<const nn::Sequential*>(&model);
  SHRINK_CHECK(chain != nullptr, "run_range: the model is a ", model.type_name(),
               "; running a range of layers needs a feed-forward chain (Sequential)");
  Tensor y = x;
  bool running = false;
  for (const auto& [name, layer] : chain->named_children()) {
    if (name == first) running = true;
    if (running) y = (*layer)(y);
    if (running && name == last) return y;
  }
  fail("run_range: layers '", first, "'..'", last, "' are not a range of the model");
}

}  // namespace shrink::prune
