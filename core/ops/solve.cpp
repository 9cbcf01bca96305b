// Dense symmetric positive definite solves (not differentiable: no gradient is recorded,
// and an input that would need one is refused). The consumer refit (prune/refit.cpp) calls
// cholesky_solve on its regularised normal equations.
#include <string>

#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

Tensor cholesky_solve(const Tensor& g, const Tensor& b) {
  check_compatible("cholesky_solve", g, b);
  check_floating("cholesky_solve", g);
  SHRINK_CHECK(g.dim() == 2 && g.size(0) == g.size(1), "cholesky_solve: the matrix must be square (n, n), got ",
               shape_str(g.shape()));
  const std::int64_t n = g.size(0);
  SHRINK_CHECK(b.dim() == 2 && b.size(0) == n, "cholesky_solve: the right-hand side must be (", n,
               ", m) for a (", n, ", ", n, ") matrix, got ", shape_str(b.shape()));
  SHRINK_CHECK(!needs_grad({&g, &b}), "cholesky_solve: not differentiable; pass detached tensors "
               "(or call it under a NoGradGuard)");
  Tensor x = empty_like(b);
  if (n == 0 || b.numel() == 0) return x;
  kernels::Backend& be = backend_of(g);
  Tensor l = empty_like(g);
  Tensor info = Tensor::empty({1}, DType::Int64, g.device());
  be.cholesky(g.dtype(), n, g.raw_data(), l.raw_data(), static_cast<std::int64_t*>(info.raw_data()));
  std::int64_t pivot = 0;
  be.copy_to_host(&pivot, info.raw_data(), sizeof pivot);
  SHRINK_CHECK(pivot >= n, "cholesky_solve: the ", n, "x", n, " matrix is not positive definite: pivot ", pivot,
               " (the leading ", pivot + 1, "x", pivot + 1, " block) is not positive");
  Tensor y = empty_like(b);
  be.triangular_solve(g.dtype(), n, b.size(1), l.raw_data(), false, b.raw_data(), y.raw_data());
  be.triangular_solve(g.dtype(), n, b.size(1), l.raw_data(), true, y.raw_data(), x.raw_data());
  return x;
}

}  // namespace shrink
