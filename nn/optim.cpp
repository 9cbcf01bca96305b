#include "nn/optim.h"

#include <algorithm>
#include <set>

#include "core/optim_step.h"

namespace shrink::nn {

namespace {

// Whether `params` has a parameter called `name`.
bool holds(const NamedTensors& params, const std::string& name) {
  return std::any_of(params.begin(), params.end(), [&](const auto& e) { return e.first == name; });
}

}  // namespace

Optimizer::Optimizer(NamedTensors params, double lr) : params_(std::move(params)) {
  set_lr(lr);
  std::set<std::string> seen;
  for (const auto& [name, p] : params_) {
    SHRINK_CHECK(seen.insert(name).second, "Optimizer: parameter '", name, "' given twice");
    SHRINK_CHECK(p.defined() && p.dtype() != DType::Int64, "Optimizer: parameter '", name,
                 "' must be a defined floating-point tensor");
  }
}

void Optimizer::set_lr(double lr) {
  SHRINK_CHECK(lr >= 0, "Optimizer", ": learning rate must be >= 0, got ", lr);
  lr_ = lr;
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

void Optimizer::set_parameter(const std::string& name, const Tensor& value) {
  auto it = std::find_if(params_.begin(), params_.end(),
                         [&](const auto& e) { return e.first == name; });
  SHRINK_CHECK(it != params_.end(), "Optimizer::set_parameter: no parameter '", name, "'");
  SHRINK_CHECK(value.defined() && value.dtype() != DType::Int64,
               "Optimizer::set_parameter: '", name, "' must be a defined floating-point tensor");
  it->second = value;
}

void Optimizer::exclude_from_weight_decay(const std::set<std::string>& names) {
  for (const auto& name : names)
    SHRINK_CHECK(holds(params_, name), "Optimizer::exclude_from_weight_decay: no parameter '", name, "'");
  no_decay_ = names;
}

double Optimizer::decay_of(const std::string& name, double weight_decay) const {
  return no_decay_.count(name) ? 0.0 : weight_decay;
}

void Optimizer::restart(const std::string& name) {
  SHRINK_CHECK(holds(params_, name),
               "Optimizer::restart: no parameter '", name, "'");
  state_.erase(name);
}

Tensor& Optimizer::state_tensor(const std::string& name, const Tensor& param,
                                const std::string& key, bool* created) {
  auto& slot = state_[name][key];
  if (created) *created = !slot.defined();
  if (!slot.defined()) {
    slot = Tensor::zeros(param.shape(), param.dtype(), param.device());
  } else {
    SHRINK_CHECK(slot.shape() == param.shape() && slot.dtype() == param.dtype() &&
                     slot.device() == param.device(),
                 "Optimizer: state '", key, "' of '", name, "' is ", shape_str(slot.shape()), " ",
                 dtype_name(slot.dtype()), " on ", slot.device().str(), " but the parameter is ",
                 shape_str(param.shape()), " ", dtype_name(param.dtype()), " on ",
                 param.device().str(), " (slice the state along with the parameter)");
  }
  return slot;
}

Tensor Optimizer::checked_grad(const std::string& name, const Tensor& param) {
  Tensor g = param.grad();
  if (!g.defined()) return g;
  SHRINK_CHECK(g.shape() == param.shape() && g.dtype() == param.dtype() &&
                   g.device() == param.device(),
               "Optimizer: gradient of '", name, "' is ", shape_str(g.shape()), " ",
               dtype_name(g.dtype()), " on ", g.device().str(), ", parameter is ",
               shape_str(param.shape()), " ", dtype_name(param.dtype()), " on ",
               param.device().str());
  return g;
}

// ---- SGD ----

SGD::SGD(NamedTensors params, double lr, double momentum, double dampening, double weight_decay,
         bool nesterov)
    : Optimizer(std::move(params), lr),
      momentum_(momentum),
      dampening_(dampening),
      weight_decay_(weight_decay),
      nesterov_(nesterov) {
  SHRINK_CHECK(momentum >= 0, "SGD: momentum must be >= 0, got ", momentum);
  SHRINK_CHECK(weight_decay >= 0, "SGD: weight_decay must be >= 0, got ", weight_decay);
  SHRINK_CHECK(!nesterov || (momentum > 0 && dampening == 0),
               "SGD: nesterov needs momentum > 0 and dampening = 0 (got momentum ", momentum,
               ", dampening ", dampening, ")");
}

void SGD::step() {
  for (auto& [name, p] : params_) {
    const Tensor g = checked_grad(name, p);
    if (!g.defined()) continue;
    SgdUpdate u;
    u.lr = lr_;
    u.momentum = momentum_;
    u.dampening = dampening_;
    u.weight_decay = decay_of(name, weight_decay_);
    u.nesterov = nesterov_;
    Tensor* buffer = nullptr;
    if (momentum_ != 0) {
      bool created = false;
      buffer = &state_tensor(name, p, "momentum_buffer", &created);
      u.first_step = created;  // PyTorch: buf = g on the first step (no dampening)
    }
    sgd_update_(p, g, buffer, u);
  }
}

// ---- AdamW ----

AdamW::AdamW(NamedTensors params, double lr, double beta1, double beta2, double eps,
             double weight_decay)
    : Optimizer(std::move(params), lr),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      weight_decay_(weight_decay) {
  SHRINK_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1,
               "AdamW: betas must be in [0, 1), got (", beta1, ", ", beta2, ")");
  SHRINK_CHECK(eps >= 0, "AdamW: eps must be >= 0, got ", eps);
  SHRINK_CHECK(weight_decay >= 0, "AdamW: weight_decay must be >= 0, got ", weight_decay);
}

std::int64_t AdamW::step_count(const std::string& name) const {
  auto it = steps_.find(name);
  return it == steps_.end() ? 0 : it->second;
}

void AdamW::set_step_count(const std::string& name, std::int64_t steps) {
  SHRINK_CHECK(holds(params_, name),
               "AdamW::set_step_count: no parameter '", name, "'");
  SHRINK_CHECK(steps >= 0, "AdamW::set_step_count: '", name, "': step count must be >= 0, got ", steps);
  if (steps == 0) steps_.erase(name);
  else steps_[name] = steps;
}

void AdamW::restart(const std::string& name) {
  Optimizer::restart(name);
  steps_.erase(name);
}

void AdamW::step() {
  for (auto& [name, p] : params_) {
    const Tensor g = checked_grad(name, p);
    if (!g.defined()) continue;
    Tensor& exp_avg = state_tensor(name, p, "exp_avg");
    Tensor& exp_avg_sq = state_tensor(name, p, "exp_avg_sq");
    AdamWUpdate u;
    u.lr = lr_;
    u.beta1 = beta1_;
    u.beta2 = beta2_;
    u.eps = eps_;
    u.weight_decay = decay_of(name, weight_decay_);
    u.step = ++steps_[name];
    adamw_update_(p, g, exp_avg, exp_avg_sq, u);
  }
}

}  // namespace shrink::nn
