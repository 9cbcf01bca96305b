// Reference softmax family and cross-entropy, in double precision, the textbook way:
// p = exp(x) / sum exp(x) (with the row max subtracted), the Jacobian-vector products of
// softmax and log-softmax, and label-smoothed cross-entropy. The tests' oracle for
// kernels/cpu/softmax.cpp and kernels/cuda/softmax.cu.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

namespace shrink::kernels::reference {

// x, y: (outer, dim, inner); softmax (or log_softmax when `log`) over the middle axis.
inline void softmax(bool log, std::int64_t outer, std::int64_t dim, std::int64_t inner,
                    const double* x, double* y) {
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      auto at = [&](std::int64_t k) { return (o * dim + k) * inner + i; };
      double m = -INFINITY;
      for (std::int64_t k = 0; k < dim; ++k) m = std::fmax(m, x[at(k)]);
      double total = 0;
      for (std::int64_t k = 0; k < dim; ++k) total += std::exp(x[at(k)] - m);
      for (std::int64_t k = 0; k < dim; ++k)
        y[at(k)] = log ? x[at(k)] - m - std::log(total) : std::exp(x[at(k)] - m) / total;
    }
}

// y, dy, dx: (outer, dim, inner). With p = softmax(x):
//   softmax:      dx = p * (dy - sum_k dy_k p_k)       (y = p)
//   log_softmax:  dx = dy - p * sum_k dy_k             (y = log p)
inline void softmax_backward(bool log, std::int64_t outer, std::int64_t dim, std::int64_t inner,
                             const double* y, const double* dy, double* dx) {
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      auto at = [&](std::int64_t k) { return (o * dim + k) * inner + i; };
      double dot = 0, dy_sum = 0;
      for (std::int64_t k = 0; k < dim; ++k) {
        const double p = log ? std::exp(y[at(k)]) : y[at(k)];
        dot += dy[at(k)] * p;
        dy_sum += dy[at(k)];
      }
      for (std::int64_t k = 0; k < dim; ++k) {
        const double p = log ? std::exp(y[at(k)]) : y[at(k)];
        dx[at(k)] = log ? dy[at(k)] - p * dy_sum : p * (dy[at(k)] - dot);
      }
    }
}

// The smoothed target distribution of one row: (1 - eps) on the label plus eps / c on all.
inline double smoothed_target(std::int64_t j, std::int64_t label, double eps, std::int64_t c) {
  return (j == label ? 1 - eps : 0.0) + eps / static_cast<double>(c);
}

// logits, probs: (n, c); labels, loss: (n).
// loss_i = -sum_j target_ij log p_ij, target from smoothed_target; probs = softmax rows.
inline void cross_entropy(std::int64_t n, std::int64_t c, double eps, const double* logits,
                          const std::int64_t* labels, double* loss, double* probs) {
  std::vector<double> log_p(static_cast<std::size_t>(c));
  for (std::int64_t r = 0; r < n; ++r) {
    softmax(true, 1, c, 1, logits + r * c, log_p.data());
    double l = 0;
    for (std::int64_t j = 0; j < c; ++j) {
      l -= smoothed_target(j, labels[r], eps, c) * log_p[j];
      probs[r * c + j] = std::exp(log_p[j]);
    }
    loss[r] = l;
  }
}

// probs, grad: (n, c); labels: (n). grad = scale * (probs - target).
inline void cross_entropy_backward(std::int64_t n, std::int64_t c, double eps, double scale,
                                   const double* probs, const std::int64_t* labels,
                                   double* grad) {
  for (std::int64_t r = 0; r < n; ++r)
    for (std::int64_t j = 0; j < c; ++j)
      grad[r * c + j] = scale * (probs[r * c + j] - smoothed_target(j, labels[r], eps, c));
}

}  // namespace shrink::kernels::reference
