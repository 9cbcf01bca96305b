#include "core/optim_step.h"

#include "core/ops/common.h"

namespace shrink {

namespace {

// The update kernels read every tensor as the parameter's numel of its dtype, on its device.
void check_like_param(const char* op, const char* what, const Tensor& param, const Tensor& t) {
  SHRINK_CHECK(t.defined() && t.shape() == param.shape() && t.dtype() == param.dtype() &&
                   t.device() == param.device(),
               op, ": ", what, " must match the parameter ", shape_str(param.shape()), " ",
               dtype_name(param.dtype()), " on ", param.device().str());
}

}  // namespace

void sgd_update_(Tensor& param, const Tensor& grad, Tensor* momentum_buffer, const SgdUpdate& u) {
  ops_detail::check_floating("sgd_update_", param);
  check_like_param("sgd_update_", "the gradient", param, grad);
  void* buffer = nullptr;
  if (u.momentum != 0) {
    SHRINK_CHECK(momentum_buffer != nullptr, "sgd_update_: momentum needs a buffer");
    check_like_param("sgd_update_", "the momentum buffer", param, *momentum_buffer);
    buffer = momentum_buffer->raw_data();
  }
  kernels::SgdParams hp;
  hp.lr = u.lr;
  hp.momentum = u.momentum;
  hp.dampening = u.dampening;
  hp.weight_decay = u.weight_decay;
  hp.nesterov = u.nesterov;
  hp.first_step = u.first_step;
  ops_detail::backend_of(param).sgd_step(param.dtype(), param.numel(), hp, param.raw_data(),
                                         grad.raw_data(), buffer);
}

void adamw_update_(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq,
                   const AdamWUpdate& u) {
  ops_detail::check_floating("adamw_update_", param);
  check_like_param("adamw_update_", "the gradient", param, grad);
  check_like_param("adamw_update_", "exp_avg", param, exp_avg);
  check_like_param("adamw_update_", "exp_avg_sq", param, exp_avg_sq);
  kernels::AdamWParams hp;
  hp.lr = u.lr;
  hp.beta1 = u.beta1;
  hp.beta2 = u.beta2;
  hp.eps = u.eps;
  hp.weight_decay = u.weight_decay;
  hp.step = u.step;
  ops_detail::backend_of(param).adamw_step(param.dtype(), param.numel(), hp, param.raw_data(),
                                           grad.raw_data(), exp_avg.raw_data(),
                                           exp_avg_sq.raw_data());
}

}  // namespace shrink
