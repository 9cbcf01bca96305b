// Pointwise math and activations: y = f(x), dx = dy * f'(x) via the backend's derivative
// kernel, which reads x or y (exp, sqrt, relu, relu6, tanh, sigmoid reuse y).
#include "core/ops/common.h"
#include "kernels/formulas/unary.h"

namespace shrink {

using namespace ops_detail;

namespace {

Tensor pointwise(kernels::UnaryOp op, const char* name, const Tensor& x, double alpha = 0) {
  check_floating(name, x);
  Tensor y = empty_like(x);
  backend_of(x).unary(op, x.dtype(), x.numel(), alpha, x.raw_data(), y.raw_data());
  if (needs_grad({&x})) {
    // Only the tensor the derivative reads stays alive until backward: a ReLU keeps its output,
    // not also its input (often a conv's or a BatchNorm's output that nothing else keeps).
    const Tensor kept = kernels::formulas::unary_grad_reads_output(op) ? y.detach() : x.detach();
    record(y, name, {x}, [op, alpha, kept](const Tensor& g) {
      Tensor dx = empty_like(g);
      backend_of(g).unary_backward(op, g.dtype(), g.numel(), alpha, kept.raw_data(), kept.raw_data(),
                                   g.raw_data(), dx.raw_data());
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace

Tensor exp(const Tensor& x) { return pointwise(kernels::UnaryOp::Exp, "exp", x); }
Tensor log(const Tensor& x) { return pointwise(kernels::UnaryOp::Log, "log", x); }
Tensor sqrt(const Tensor& x) { return pointwise(kernels::UnaryOp::Sqrt, "sqrt", x); }
Tensor pow(const Tensor& x, double e) { return pointwise(kernels::UnaryOp::PowScalar, "pow", x, e); }
Tensor abs(const Tensor& x) { return pointwise(kernels::UnaryOp::Abs, "abs", x); }
Tensor square(const Tensor& x) { return pointwise(kernels::UnaryOp::Square, "square", x); }
Tensor relu(const Tensor& x) { return pointwise(kernels::UnaryOp::Relu, "relu", x); }
Tensor relu6(const Tensor& x) { return pointwise(kernels::UnaryOp::Relu6, "relu6", x); }
Tensor gelu(const Tensor& x) { return pointwise(kernels::UnaryOp::Gelu, "gelu", x); }
Tensor gelu_tanh(const Tensor& x) { return pointwise(kernels::UnaryOp::GeluTanh, "gelu_tanh", x); }
Tensor tanh(const Tensor& x) { return pointwise(kernels::UnaryOp::Tanh, "tanh", x); }
Tensor sigmoid(const Tensor& x) { return pointwise(kernels::UnaryOp::Sigmoid, "sigmoid", x); }

}  // namespace shrink
