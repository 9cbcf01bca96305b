// batch_norm over x (n, c, *) (kernels batch_norm and batch_norm_backward,
// kernels/cpu/batch_norm.cpp). Training normalises with the batch's mean and biased variance
// and, when running statistics are given, the kernel updates them in place (they are buffers:
// never recorded for autograd); the backward uses the batch statistics the kernel saved.
// Evaluation normalises with the running statistics, which the backward uses too (a snapshot
// taken at the forward). Normalisation counts no FLOPs (core/flop_counter.h).
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace {

// A per-channel vector (gamma, beta, running_mean, running_var): (c), x's dtype and device.
void check_channel_vector(const Tensor& x, const Tensor& t, const char* what) {
  if (!t.defined()) return;
  const std::int64_t c = x.size(1);
  SHRINK_CHECK(t.dim() == 1 && t.size(0) == c, "batch_norm: ", what, " must have shape (", c,
               ") for x ", shape_str(x.shape()), ", got ", shape_str(t.shape()));
  SHRINK_CHECK(t.dtype() == x.dtype(), "batch_norm: ", what, " is ", dtype_name(t.dtype()),
               " but x is ", dtype_name(x.dtype()));
  SHRINK_CHECK(t.device() == x.device(), "batch_norm: ", what, " is on ", t.device().str(),
               " but x is on ", x.device().str());
}

void* data_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean,
                  Tensor running_var, bool training, double momentum, double eps) {
  check_floating("batch_norm", x);
  SHRINK_CHECK(x.dim() >= 2, "batch_norm: x must be (n, c, *) with at least 2 axes, got ",
               shape_str(x.shape()));
  check_channel_vector(x, gamma, "gamma");
  check_channel_vector(x, beta, "beta");
  check_channel_vector(x, running_mean, "running_mean");
  check_channel_vector(x, running_var, "running_var");
  SHRINK_CHECK(running_mean.defined() == running_var.defined(),
               "batch_norm: running_mean and running_var must be both defined or both undefined");
  SHRINK_CHECK(!running_mean.defined() || (!running_mean.requires_grad() && !running_var.requires_grad()),
               "batch_norm: running statistics are buffers updated in place and must not "
               "require grad");
  SHRINK_CHECK(training || running_mean.defined(), "batch_norm: evaluation mode needs "
               "running_mean and running_var (x ", shape_str(x.shape()), ")");
  SHRINK_CHECK(momentum >= 0 && momentum <= 1, "batch_norm: momentum must be in [0, 1], got ",
               momentum);
  SHRINK_CHECK(eps > 0, "batch_norm: eps must be positive, got ", eps);
  const std::int64_t n = x.size(0), c = x.size(1);
  const std::int64_t hw = prod(x.shape(), 2, static_cast<int>(x.dim()));
  // As PyTorch: the unbiased variance of one value is undefined, and its normalised output
  // would be beta whatever x is.
  SHRINK_CHECK(!training || n * hw != 1, "batch_norm: training needs more than one value per "
               "channel, got x ", shape_str(x.shape()));

  Tensor y = empty_like(x);
  if (x.numel() == 0) return y;
  Tensor mean, invstd;  // (c): the statistics that normalised x
  kernels::Backend& be = backend_of(x);
  if (training) {
    mean = empty_like(x, {c});
    invstd = empty_like(x, {c});
    be.batch_norm(x.dtype(), n, c, hw, true, momentum, eps, x.raw_data(), data_or_null(gamma),
                  data_or_null(beta), data_or_null(running_mean), data_or_null(running_var),
                  mean.raw_data(), invstd.raw_data(), y.raw_data());
  } else {
    be.batch_norm(x.dtype(), n, c, hw, false, momentum, eps, x.raw_data(), data_or_null(gamma),
                  data_or_null(beta), running_mean.raw_data(), running_var.raw_data(), nullptr,
                  nullptr, y.raw_data());
  }
  if (!needs_grad({&x, &gamma, &beta})) return y;

  if (!training) {
    NoGradGuard no_grad;
    mean = running_mean.clone();
    invstd = pow(add_scalar(running_var.detach(), eps), -0.5);
  }
  const bool grad_x = x.requires_grad();
  const bool grad_gamma = gamma.defined() && gamma.requires_grad();
  const bool grad_beta = beta.defined() && beta.requires_grad();
  // In evaluation mode without gamma/beta gradients, dx = gamma invstd dy: x need not stay alive.
  const bool reads_x = training || grad_gamma || grad_beta;
  record(y, "batch_norm", {x, gamma, beta},
         [x_data = reads_x ? x.detach() : Tensor(), gamma_data = gamma.defined() ? gamma.detach() : Tensor(), mean,
          invstd, n, c, hw, training, grad_x, grad_gamma, grad_beta](const Tensor& g) {
           Tensor dx = empty_like(g);  // the kernel always writes dx
           Tensor dgamma = grad_gamma ? empty_like(g, {c}) : Tensor();
           Tensor dbeta = grad_beta ? empty_like(g, {c}) : Tensor();
           backend_of(g).batch_norm_backward(g.dtype(), n, c, hw, training, data_or_null(x_data),
                                             g.raw_data(), data_or_null(gamma_data),
                                             mean.raw_data(), invstd.raw_data(), dx.raw_data(),
                                             data_or_null(dgamma), data_or_null(dbeta));
           return std::vector<Tensor>{grad_x ? dx : Tensor(), dgamma, dbeta};
         });
  return y;
}

}  // namespace shrink
