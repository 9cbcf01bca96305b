// The per-element pieces of layer normalisation over a row (Ba, Kiros & Hinton 2016), shared by
// kernels/cpu/layer_norm.cpp and kernels/cuda/layer_norm.cu (the row reductions around them
// differ: a loop on the CPU, a warp/block reduction on the GPU). Statistics in double on both.
//   xhat = (x - mean) rstd,  rstd = 1 / sqrt(var + eps)  (biased variance, as PyTorch)
//   y    = xhat gamma + beta (gamma, beta optional)
//   g    = dy gamma,  dx = rstd (g - mean(g) - xhat mean(g xhat))
#pragma once
#include <cstdint>

#include "kernels/formulas/hd.h"

namespace shrink::kernels::formulas {

template <class T>
SHRINK_HD T layer_norm_output(double xhat, const T* gamma, const T* beta, std::int64_t d) {
  double y = xhat;
  if (gamma) y *= static_cast<double>(gamma[d]);
  if (beta) y += static_cast<double>(beta[d]);
  return static_cast<T>(y);
}

// g = dy gamma of one element (gamma optional).
template <class T>
SHRINK_HD double layer_norm_g(T dy, const T* gamma, std::int64_t d) {
  return gamma ? static_cast<double>(dy) * static_cast<double>(gamma[d]) : static_cast<double>(dy);
}

SHRINK_HD double layer_norm_dx(double g, double xhat, double mean_g, double mean_gx, double rstd) {
  return rstd * (g - mean_g - xhat * mean_gx);
}

}  // namespace shrink::kernels::formulas
