// layer_norm over the last axis (kernels layer_norm and layer_norm_backward): each row of
// (rows, dim) normalised by its own mean and biased variance, then gamma and beta per
// feature, as torch.nn.functional.layer_norm with normalized_shape = (dim,). The backward
// reuses the statistics the forward kernel saved. Normalisation counts no FLOPs, like
// batch_norm (core/flop_counter.h).
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace {

// gamma or beta: (dim), x's dtype and device.
void check_feature_vector(const Tensor& x, const Tensor& t, const char* what) {
  if (!t.defined()) return;
  const std::int64_t dim = x.size(x.dim() - 1);
  SHRINK_CHECK(t.dim() == 1 && t.size(0) == dim, "layer_norm: ", what, " must have shape (", dim,
               ") for x ", shape_str(x.shape()), ", got ", shape_str(t.shape()));
  SHRINK_CHECK(t.dtype() == x.dtype(), "layer_norm: ", what, " is ", dtype_name(t.dtype()), " but x is ",
               dtype_name(x.dtype()));
  SHRINK_CHECK(t.device() == x.device(), "layer_norm: ", what, " is on ", t.device().str(), " but x is on ",
               x.device().str());
}

void* data_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps) {
  check_floating("layer_norm", x);
  SHRINK_CHECK(x.dim() >= 1, "layer_norm: x must have at least one axis, got ", shape_str(x.shape()));
  check_feature_vector(x, gamma, "gamma");
  check_feature_vector(x, beta, "beta");
  SHRINK_CHECK(eps > 0, "layer_norm: eps must be positive, got ", eps);
  const std::int64_t dim = x.size(x.dim() - 1);
  SHRINK_CHECK(dim > 0, "layer_norm: the normalised axis of x ", shape_str(x.shape()), " is empty");
  const std::int64_t rows = x.numel() / dim;
  Tensor y = empty_like(x);
  if (rows == 0) return y;
  Tensor mean = empty_like(x, {rows}), rstd = empty_like(x, {rows});
  backend_of(x).layer_norm(x.dtype(), rows, dim, eps, x.raw_data(), data_or_null(gamma), data_or_null(beta),
                           y.raw_data(), mean.raw_data(), rstd.raw_data());
  if (!needs_grad({&x, &gamma, &beta})) return y;
  const bool grad_x = x.requires_grad();
  const bool grad_gamma = gamma.defined() && gamma.requires_grad();
  const bool grad_beta = beta.defined() && beta.requires_grad();
  record(y, "layer_norm", {x, gamma, beta},
         [x_data = x.detach(), gamma_data = gamma.defined() ? gamma.detach() : Tensor(), mean, rstd, rows, dim,
          grad_x, grad_gamma, grad_beta](const Tensor& g) {
           Tensor dx = empty_like(g);  // the kernel always writes dx
           Tensor dgamma = grad_gamma ? empty_like(g, {dim}) : Tensor();
           Tensor dbeta = grad_beta ? empty_like(g, {dim}) : Tensor();
           backend_of(g).layer_norm_backward(g.dtype(), rows, dim, x_data.raw_data(), data_or_null(gamma_data),
                                             mean.raw_data(), rstd.raw_data(), g.raw_data(), dx.raw_data(),
                                             data_or_null(dgamma), data_or_null(dbeta));
           return std::vector<Tensor>{grad_x ? dx : Tensor(), dgamma, dbeta};
         });
  return y;
}

}  // namespace shrink
