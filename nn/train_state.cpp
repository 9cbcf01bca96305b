#include "nn/train_state.h"

#include <set>

#include "core/error.h"
#include "core/outside_json.h"
#include "nn/dropout.h"

namespace shrink::nn {

namespace {

// j[key] as T, or an error naming `what` (the file) and the key.
template <class T>
T get(const nlohmann::json& j, const char* key, const std::string& what) {
  SHRINK_CHECK(j.is_object() && j.contains(key), what, ": missing '", key, "' in ", quote_json(j));
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    fail(what, ": '", key, "' has the wrong type in ", quote_json(j), " (", e.what(), ")");
  }
}

}  // namespace

NamedTensors optimizer_state_tensors(const Optimizer& optimizer) {
  NamedTensors out;
  for (const auto& [param, _] : optimizer.named_parameters()) {
    auto it = optimizer.state().find(param);
    if (it == optimizer.state().end()) continue;
    for (const auto& [key, t] : it->second)
      if (t.defined()) out.emplace_back(kOptimizerTensorPrefix + param + "/" + key, t.to(Device::cpu()));
  }
  return out;
}

nlohmann::json optimizer_scalars(const Optimizer& optimizer) {
  nlohmann::json j{{"type", optimizer.type_name()}, {"lr", optimizer.lr()}};
  if (const auto* adam = dynamic_cast<const AdamW*>(&optimizer)) {
    nlohmann::json steps = nlohmann::json::object();
    for (const auto& [param, _] : optimizer.named_parameters())
      if (adam->step_count(param) > 0) steps[param] = adam->step_count(param);
    j["steps"] = steps;
  }
  return j;
}

void restore_optimizer(Optimizer& optimizer, const std::map<std::string, Tensor>& tensors,
                       const nlohmann::json& scalars, const std::string& file) {
  const std::string what = file + ": optimizer state";
  const auto type = get<std::string>(scalars, "type", what);
  SHRINK_CHECK(type == optimizer.type_name(), what, ": saved for ", type, ", but the run uses ",
               optimizer.type_name());
  std::map<std::string, Tensor> params;
  for (const auto& [name, p] : optimizer.named_parameters()) params[name] = p;
  OptimizerState state;
  const std::string prefix = kOptimizerTensorPrefix;
  for (const auto& [name, t] : tensors) {
    if (name.rfind(prefix, 0) != 0) continue;
    const auto slash = name.rfind('/');
    SHRINK_CHECK(slash > prefix.size(), what, ": tensor name '", name, "' is not optim/<parameter>/<key>");
    const std::string param = name.substr(prefix.size(), slash - prefix.size()), key = name.substr(slash + 1);
    auto p = params.find(param);
    SHRINK_CHECK(p != params.end(), what, ": '", name, "' names no parameter of the model");
    SHRINK_CHECK(t.shape() == p->second.shape() && t.dtype() == p->second.dtype(), what, ": '", name,
                 "' is ", shape_str(t.shape()), " ", dtype_name(t.dtype()), " but the parameter is ",
                 shape_str(p->second.shape()), " ", dtype_name(p->second.dtype()));
    state[param][key] = t.to(p->second.device());
  }
  optimizer.state() = std::move(state);
  optimizer.set_lr(get<double>(scalars, "lr", what));
  if (auto* adam = dynamic_cast<AdamW*>(&optimizer)) {
    const auto steps = get<std::map<std::string, std::int64_t>>(scalars, "steps", what);
    for (const auto& [param, _] : params) {
      auto it = steps.find(param);
      adam->set_step_count(param, it == steps.end() ? 0 : it->second);
    }
    for (const auto& [param, _] : steps)
      SHRINK_CHECK(params.count(param), what, ": step count for '", param, "', which is no parameter");
  }
}

nlohmann::json generator_json(const Generator& gen) {
  return {{"seed", gen.seed()}, {"offset", gen.offset()}};
}

Generator generator_from_json(const nlohmann::json& j, const std::string& what) {
  return Generator(get<std::uint64_t>(j, "seed", what), get<std::uint64_t>(j, "offset", what));
}

nlohmann::json dropout_streams(const Module& model) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [path, m] : model.named_modules())
    if (const auto* d = dynamic_cast<const Dropout*>(m)) out[path] = generator_json(d->generator());
  return out;
}

void restore_dropout_streams(Module& model, const nlohmann::json& streams, const std::string& file) {
  const std::string what = file + ": dropout streams";
  SHRINK_CHECK(streams.is_object(), what, ": expected an object, got ", quote_json(streams));
  std::set<std::string> seen;
  for (const auto& [path, m] : model.named_modules()) {
    auto* d = dynamic_cast<Dropout*>(m);
    if (!d) continue;
    SHRINK_CHECK(streams.contains(path), what, ": none saved for the Dropout at '", path, "'");
    d->set_generator(generator_from_json(streams.at(path), what + " '" + path + "'"));
    seen.insert(path);
  }
  for (const auto& [path, _] : streams.items())
    SHRINK_CHECK(seen.count(path), what, ": '", path, "' is no Dropout layer of the model");
}

nlohmann::json tally_json(const EpochTally& tally) {
  return {{"steps", tally.steps}, {"loss_sum", tally.loss_sum}, {"correct", tally.correct},
          {"samples", tally.samples}};
}

EpochTally tally_from_json(const nlohmann::json& j, const std::string& what) {
  EpochTally t;
  t.steps = get<std::int64_t>(j, "steps", what);
  t.loss_sum = get<double>(j, "loss_sum", what);
  t.correct = get<double>(j, "correct", what);
  t.samples = get<std::int64_t>(j, "samples", what);
  SHRINK_CHECK(t.steps >= 0 && t.samples >= 0, what, ": negative steps or samples in ", quote_json(j));
  return t;
}

}  // namespace shrink::nn
