// Optimizers with PyTorch's semantics, each update one fused kernel call per parameter
// (core/optim_step.h).
//
// Parameters are held by name, and per-parameter state (momentum buffers, Adam moments)
// lives in a name -> {state name -> tensor} map that pruning reads and replaces: when a
// layer shrinks, the pruner slices the parameter, calls set_parameter() here with the
// new tensor and slices every state tensor of that name the same way. step() checks
// that each state tensor still has its parameter's shape.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "nn/module.h"

namespace shrink::nn {

using ParamState = std::map<std::string, Tensor>;  // e.g. "momentum_buffer", "exp_avg"
using OptimizerState = std::map<std::string, ParamState>;

class Optimizer {
 public:
  Optimizer(NamedTensors params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual std::string type_name() const = 0;
  // One update of every parameter that has a gradient; the others are skipped.
  virtual void step() = 0;
  void zero_grad();  // drops the gradients (PyTorch set_to_none)

  double lr() const { return lr_; }
  void set_lr(double lr);

  const NamedTensors& named_parameters() const { return params_; }
  // Rebinds `name` to a new tensor (the pruned parameter); its state must be replaced too.
  void set_parameter(const std::string& name, const Tensor& value);
  OptimizerState& state() { return state_; }
  const OptimizerState& state() const { return state_; }
  // Forgets everything the optimizer has learnt about `name` (its state tensors and any
  // per-parameter counters), as if its next step were its first: used when a parameter's
  // values are re-solved rather than sliced (prune/refit.h), so old moments no longer apply.
  virtual void restart(const std::string& name);
  // Parameters that get no weight decay (PyTorch's usual second parameter group: norm
  // weights and biases); replaces any earlier set. Unknown names throw.
  void exclude_from_weight_decay(const std::set<std::string>& names);
  const std::set<std::string>& excluded_from_weight_decay() const { return no_decay_; }

 protected:
  // The state tensor `key` of parameter `name`, created as zeros like `param` when absent;
  // `created` tells whether it was. Throws if a stored one no longer matches the shape.
  Tensor& state_tensor(const std::string& name, const Tensor& param, const std::string& key,
                       bool* created = nullptr);
  // The gradient of `param`, checked against it; undefined when it has none.
  static Tensor checked_grad(const std::string& name, const Tensor& param);

  // `weight_decay`, or 0 for a parameter excluded from it.
  double decay_of(const std::string& name, double weight_decay) const;

  NamedTensors params_;
  OptimizerState state_;
  double lr_;
  std::set<std::string> no_decay_;
};

// SGD as torch.optim.SGD: g += wd*w; buf = momentum*buf + (1-dampening)*g, buf = g on the
// first step; update = nesterov ? g + momentum*buf : buf; w -= lr*update.
class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, double lr, double momentum = 0, double dampening = 0,
      double weight_decay = 0, bool nesterov = false);
  std::string type_name() const override { return "SGD"; }
  void step() override;

 private:
  double momentum_, dampening_, weight_decay_;
  bool nesterov_;
};

// AdamW as torch.optim.AdamW (Loshchilov & Hutter 2019): w *= 1 - lr*wd (decoupled),
// m = b1*m + (1-b1)*g, v = b2*v + (1-b2)*g^2, w -= lr/(1-b1^t) * m / (sqrt(v/(1-b2^t)) + eps).
// The step count t is per parameter (a parameter without a gradient does not advance).
class AdamW : public Optimizer {
 public:
  AdamW(NamedTensors params, double lr, double beta1 = 0.9, double beta2 = 0.999,
        double eps = 1e-8, double weight_decay = 0.01);
  std::string type_name() const override { return "AdamW"; }
  void step() override;
  std::int64_t step_count(const std::string& name) const;
  // Restores a saved run's per-parameter step count t (nn/train_state.h).
  void set_step_count(const std::string& name, std::int64_t steps);
  void restart(const std::string& name) override;  // also resets the step count t

 private:
  double beta1_, beta2_, eps_, weight_decay_;
  std::map<std::string, std::int64_t> steps_;
};

}  // namespace shrink::nn
