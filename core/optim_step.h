// The fused in-place optimizer updates of one parameter tensor, as core functions so that
// nn/optim (which owns names, state and schedules) never reaches into the kernels. Each is
// one backend kernel call on the parameter's device; every tensor must match the parameter
// in shape, dtype and device (nn::Optimizer checks and names them first).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace shrink {

// torch.optim.SGD: g += wd*w; buf = momentum*buf + (1-dampening)*g (buf = g on the first
// step); update = nesterov ? g + momentum*buf : buf; w -= lr*update.
struct SgdUpdate {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool first_step = false;  // the buffer starts as the first gradient
};
// `momentum_buffer` is used (read and written) only when momentum != 0.
void sgd_update_(Tensor& param, const Tensor& grad, Tensor* momentum_buffer, const SgdUpdate& u);

// torch.optim.AdamW (decoupled weight decay, bias correction with the 1-based `step`).
struct AdamWUpdate {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  std::int64_t step = 1;
};
void adamw_update_(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                   const AdamWUpdate& u);

}  // namespace shrink
