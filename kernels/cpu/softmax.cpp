// Softmax, log-softmax and the fused cross-entropy, over the middle axis of (outer, dim, inner).
// Max-subtraction keeps exp() in range; cross-entropy works from log-probabilities.
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/vector_exp.h"
#include "kernels/formulas/softmax.h"

namespace shrink::kernels::cpu {

namespace {

// float32 rows along the last axis (inner == 1: attention scores, logits): one exp per
// element, eight at a time (kernels/cpu/vector_exp.h), stored and then scaled.
void softmax_rows_float(bool log, std::int64_t rows, std::int64_t dim, const float* x, float* y) {
#pragma omp parallel for schedule(static) if (rows * dim > kParallelGrain)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* src = x + r * dim;
    float* dst = y + r * dim;
    float m = -std::numeric_limits<float>::infinity();
    for (std::int64_t d = 0; d < dim; ++d) m = src[d] > m ? src[d] : m;
    const float total = vexp::exp_shifted(src, m, dst, dim);
    if (log) {
      const float log_total = std::log(total) + m;
      for (std::int64_t d = 0; d < dim; ++d) dst[d] = src[d] - log_total;
    } else {
      const float inv = 1.0f / total;
      for (std::int64_t d = 0; d < dim; ++d) dst[d] *= inv;
    }
  }
}

template <class T>
void softmax_typed(bool log, std::int64_t outer, std::int64_t dim, std::int64_t inner, const T* x,
                   T* y) {
  if constexpr (std::is_same_v<T, float>)
    if (inner == 1) return softmax_rows_float(log, outer, dim, x, y);
#pragma omp parallel for collapse(2) schedule(static) if (outer * dim * inner > kParallelGrain)
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      const T* src = x + o * dim * inner + i;
      T* dst = y + o * dim * inner + i;
      T m = -std::numeric_limits<T>::infinity();
      for (std::int64_t d = 0; d < dim; ++d) m = src[d * inner] > m ? src[d * inner] : m;
      T total = T(0);
      for (std::int64_t d = 0; d < dim; ++d) total += std::exp(src[d * inner] - m);
      if (log) {
        const T log_total = std::log(total) + m;
        for (std::int64_t d = 0; d < dim; ++d) dst[d * inner] = src[d * inner] - log_total;
      } else {
        const T inv = T(1) / total;
        for (std::int64_t d = 0; d < dim; ++d) dst[d * inner] = std::exp(src[d * inner] - m) * inv;
      }
    }
}

// The formulas (softmax and log_softmax) are kernels/formulas/softmax.h.
template <class T>
void softmax_backward_typed(bool log, std::int64_t outer, std::int64_t dim, std::int64_t inner,
                            const T* y, const T* dy, T* dx) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * dim * inner > kParallelGrain)
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      const std::int64_t base = o * dim * inner + i;
      T dot = T(0);
      for (std::int64_t d = 0; d < dim; ++d)
        dot += formulas::softmax_dot_term(log, y[base + d * inner], dy[base + d * inner]);
      for (std::int64_t d = 0; d < dim; ++d) {
        const std::int64_t k = base + d * inner;
        dx[k] = formulas::softmax_grad(log, y[k], dy[k], dot);
      }
    }
}

template <class T>
void cross_entropy_typed(std::int64_t n, std::int64_t c, double smoothing, const T* logits,
                         const std::int64_t* labels, T* loss, T* probs) {
  const auto target = formulas::SmoothedTarget<T>::from(smoothing, c);
#pragma omp parallel for schedule(static) if (n * c > kParallelGrain)
  for (std::int64_t r = 0; r < n; ++r) {
    const T* z = logits + r * c;
    T* p = probs + r * c;
    T m = -std::numeric_limits<T>::infinity();
    for (std::int64_t j = 0; j < c; ++j) m = z[j] > m ? z[j] : m;
    T total = T(0);
    for (std::int64_t j = 0; j < c; ++j) total += std::exp(z[j] - m);
    const T log_total = std::log(total) + m;
    T sum_logp = T(0);
    for (std::int64_t j = 0; j < c; ++j) {
      const T logp = z[j] - log_total;
      sum_logp += logp;
      p[j] = std::exp(logp);
    }
    loss[r] = formulas::cross_entropy_loss(target, z[labels[r]], log_total, sum_logp);
  }
}

template <class T>
void cross_entropy_backward_typed(std::int64_t n, std::int64_t c, double smoothing, double scale,
                                  const T* probs, const std::int64_t* labels, T* grad) {
  const auto g = formulas::CrossEntropyGradScalars<T>::from(smoothing, c, scale);
#pragma omp parallel for schedule(static) firstprivate(g) if (n * c > kParallelGrain)
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t j = 0; j < c; ++j)
      grad[r * c + j] = formulas::cross_entropy_grad(g, probs[r * c + j]);
    grad[r * c + labels[r]] -= g.label_shift;
  }
}

}  // namespace

void CpuBackend::softmax(DType t, bool log, std::int64_t outer, std::int64_t dim,
                         std::int64_t inner, const void* x, void* y) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    softmax_typed(log, outer, dim, inner, static_cast<const T*>(x), static_cast<T*>(y));
  });
}

void CpuBackend::softmax_backward(DType t, bool log, std::int64_t outer, std::int64_t dim,
                                  std::int64_t inner, const void* y, const void* dy, void* dx) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    softmax_backward_typed(log, outer, dim, inner, static_cast<const T*>(y),
                           static_cast<const T*>(dy), static_cast<T*>(dx));
  });
}

void CpuBackend::cross_entropy(DType t, std::int64_t n, std::int64_t c, double smoothing,
                               const void* logits, const std::int64_t* labels, void* loss,
                               void* probs) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    cross_entropy_typed(n, c, smoothing, static_cast<const T*>(logits), labels,
                        static_cast<T*>(loss), static_cast<T*>(probs));
  });
}

void CpuBackend::cross_entropy_backward(DType t, std::int64_t n, std::int64_t c, double smoothing,
                                        double scale, const void* probs,
                                        const std::int64_t* labels, void* grad_logits) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    cross_entropy_backward_typed(n, c, smoothing, scale, static_cast<const T*>(probs), labels,
                                 static_cast<T*>(grad_logits));
  });
}

}  // namespace shrink::kernels::cpu
