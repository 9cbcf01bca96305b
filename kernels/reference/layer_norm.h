// Reference layer normalisation over the last axis of (rows, dim), the textbook two-pass way
// in double: mean, biased variance, xhat = (x - mean) / sqrt(var + eps), y = gamma xhat + beta.
// The tests' oracle for the layer_norm kernels (kernels/kernel_list.h).
#pragma once
#include <cmath>
#include <cstdint>

namespace shrink::kernels::reference {

template <class T>
void layer_norm(std::int64_t rows, std::int64_t dim, double eps, const T* x, const T* gamma, const T* beta, T* y) {
  for (std::int64_t r = 0; r < rows; ++r) {
    double mean = 0;
    for (std::int64_t d = 0; d < dim; ++d) mean += static_cast<double>(x[r * dim + d]);
    mean /= static_cast<double>(dim);
    double var = 0;
    for (std::int64_t d = 0; d < dim; ++d) {
      const double c = static_cast<double>(x[r * dim + d]) - mean;
      var += c * c;
    }
    var /= static_cast<double>(dim);
    for (std::int64_t d = 0; d < dim; ++d) {
      double v = (static_cast<double>(x[r * dim + d]) - mean) / std::sqrt(var + eps);
      if (gamma) v *= static_cast<double>(gamma[d]);
      if (beta) v += static_cast<double>(beta[d]);
      y[r * dim + d] = static_cast<T>(v);
    }
  }
}

}  // namespace shrink::kernels::reference
