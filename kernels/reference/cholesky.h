// Reference Cholesky factorisation and triangular solves: the textbook loops in double,
// row-major, with the contracts of kernels::Backend::cholesky and ::triangular_solve.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

namespace shrink::kernels::reference {

// l (n, n) = L with a = L L^T (zeros above the diagonal). Returns n, or the index of the
// first pivot that is not positive (NaN included).
inline std::int64_t cholesky(std::int64_t n, const std::vector<double>& a, std::vector<double>& l) {
  l.assign(static_cast<std::size_t>(n * n), 0.0);
  for (std::int64_t j = 0; j < n; ++j) {
    double pivot = a[j * n + j];
    for (std::int64_t p = 0; p < j; ++p) pivot -= l[j * n + p] * l[j * n + p];
    if (!(pivot > 0)) return j;
    l[j * n + j] = std::sqrt(pivot);
    for (std::int64_t i = j + 1; i < n; ++i) {
      double v = a[i * n + j];
      for (std::int64_t p = 0; p < j; ++p) v -= l[i * n + p] * l[j * n + p];
      l[i * n + j] = v / l[j * n + j];
    }
  }
  return n;
}

// x (n, r) = L^-1 b, or L^-T b when `transpose`.
inline std::vector<double> triangular_solve(std::int64_t n, std::int64_t r, const std::vector<double>& l,
                                            bool transpose, const std::vector<double>& b) {
  std::vector<double> x(b);
  for (std::int64_t c = 0; c < r; ++c) {
    if (!transpose) {
      for (std::int64_t i = 0; i < n; ++i) {
        double v = x[i * r + c];
        for (std::int64_t p = 0; p < i; ++p) v -= l[i * n + p] * x[p * r + c];
        x[i * r + c] = v / l[i * n + i];
      }
    } else {
      for (std::int64_t i = n - 1; i >= 0; --i) {
        double v = x[i * r + c];
        for (std::int64_t p = i + 1; p < n; ++p) v -= l[p * n + i] * x[p * r + c];
        x[i * r + c] = v / l[i * n + i];
      }
    }
  }
  return x;
}

}  // namespace shrink::kernels::reference
