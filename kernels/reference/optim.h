// Reference optimizer steps, in double precision, as PyTorch documents them (torch.optim.SGD
// and torch.optim.AdamW). One parameter tensor of n elements, updated in place.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/backend.h"

namespace shrink::kernels::reference {

// param, grad, momentum_buffer: (n); momentum_buffer may be null when p.momentum == 0.
//   d = g + wd * w;  buf = first ? d : momentum * buf + (1 - dampening) * d
//   d = nesterov ? d + momentum * buf : buf;  w -= lr * d
inline void sgd_step(std::int64_t n, const SgdParams& p, double* param, const double* grad,
                     double* momentum_buffer) {
  for (std::int64_t i = 0; i < n; ++i) {
    double d = grad[i] + p.weight_decay * param[i];
    if (p.momentum != 0) {
      momentum_buffer[i] = p.first_step ? d
                                        : p.momentum * momentum_buffer[i] + (1 - p.dampening) * d;
      d = p.nesterov ? d + p.momentum * momentum_buffer[i] : momentum_buffer[i];
    }
    param[i] -= p.lr * d;
  }
}

// param, grad, exp_avg (m), exp_avg_sq (v): (n). Decoupled weight decay, then Adam with bias
// correction at step t (1-based):
//   w *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
inline void adamw_step(std::int64_t n, const AdamWParams& p, double* param, const double* grad,
                       double* exp_avg, double* exp_avg_sq) {
  const double t = static_cast<double>(p.step);
  for (std::int64_t i = 0; i < n; ++i) {
    param[i] *= 1 - p.lr * p.weight_decay;
    exp_avg[i] = p.beta1 * exp_avg[i] + (1 - p.beta1) * grad[i];
    exp_avg_sq[i] = p.beta2 * exp_avg_sq[i] + (1 - p.beta2) * grad[i] * grad[i];
    const double m_hat = exp_avg[i] / (1 - std::pow(p.beta1, t));
    const double v_hat = exp_avg_sq[i] / (1 - std::pow(p.beta2, t));
    param[i] -= p.lr * m_hat / (std::sqrt(v_hat) + p.eps);
  }
}

}  // namespace shrink::kernels::reference
