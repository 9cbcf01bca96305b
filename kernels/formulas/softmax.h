// The per-element pieces of the softmax family and the fused cross-entropy, shared by
// kernels/cpu/softmax.cpp and kernels/cuda/softmax.cu (the row reductions around them differ:
// a loop on the CPU, a warp/block reduction on the GPU).
#pragma once
#include <cstdint>

#include "kernels/formulas/hd.h"
#include "kernels/formulas/math.h"

namespace shrink::kernels::formulas {

// Backward of y = softmax(x) (or log_softmax) along one axis:
//   softmax:     dx = y * (dy - dot), dot = sum(dy * y)
//   log_softmax: dx = dy - exp(y) * dot, dot = sum(dy)
template <class T>
SHRINK_HD T softmax_dot_term(bool log, T y, T dy) {
  return log ? dy : dy * y;
}
template <class T>
SHRINK_HD T softmax_grad(bool log, T y, T dy, T dot) {
  return log ? dy - m_exp(y) * dot : y * (dy - dot);
}

// Label smoothing eps over c classes: the target puts `on` = 1 - eps at the label and
// `off` = eps / c on every class (the label included). Formed on the host.
template <class T>
struct SmoothedTarget {
  T on, off;
  static SmoothedTarget from(double smoothing, std::int64_t c) {
    return {static_cast<T>(1.0 - smoothing), static_cast<T>(smoothing / c)};
  }
};

// loss = -on * log p[label] - off * sum_j log p[j], with log p[j] = z[j] - log_total.
template <class T>
SHRINK_HD T cross_entropy_loss(SmoothedTarget<T> t, T z_label, T log_total, T sum_logp) {
  return -t.on * (z_label - log_total) - t.off * sum_logp;
}

// d loss / d z[j] * scale = scale * (p[j] - target[j]), in two steps on both backends:
// every entry gets scale * (p - off), then the label's entry loses label_shift = scale * on,
// a product rounded once on the host. (Left to the compiler, that product is fused into the
// subtraction or not depending on the loop's shape, which changes trained weights in the
// last bits; a precomputed scalar leaves a plain subtraction.)
template <class T>
struct CrossEntropyGradScalars {
  T scale, off, label_shift;
  static CrossEntropyGradScalars from(double smoothing, std::int64_t c, double scale) {
    const auto t = SmoothedTarget<T>::from(smoothing, c);
    const T s = static_cast<T>(scale);
    return {s, t.off, s * t.on};
  }
};
template <class T>
SHRINK_HD T cross_entropy_grad(const CrossEntropyGradScalars<T>& g, T p) {
  return g.scale * (p - g.off);
}

}  // namespace shrink::kernels::formulas
