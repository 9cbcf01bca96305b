// Softmax, log-softmax and the fused cross-entropy over the middle axis of (outer, dim, inner).
// Rows (inner == 1, the common case) use a warp or a block per row and one pass for the
// statistics (online max and sum of exponentials); other layouts use one thread per
// (outer, inner) pair that walks d in order, like the CPU, with coalesced loads across i.
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/row_reduce.cuh"
#include "kernels/formulas/softmax.h"

namespace shrink::kernels::cuda {

namespace {

using formulas::m_exp;
using formulas::m_log;

// log(sum_j exp(x_j)) of one row, returned to every thread of the row's group.
template <class T, int kTpr>
__device__ T row_log_sum_exp(const T* x, std::int64_t dim, rows::MaxExpSumAcc<T>* scratch) {
  auto a = rows::MaxExpSumAcc<T>::identity();
  for (std::int64_t d = rows::RowLoop<kTpr>::lane(); d < dim; d += kTpr) a.push(x[d]);
  a = rows::group_reduce<kTpr>(a, scratch);
  return m_log(a.s) + a.m;
}

template <class T, int kTpr>
__global__ void softmax_rows_kernel(bool log, std::int64_t outer, std::int64_t dim, const T* x,
                                    T* y) {
  using Loop = rows::RowLoop<kTpr>;
  __shared__ rows::MaxExpSumAcc<T> scratch[32];
  for (std::int64_t row = Loop::first(); row < outer; row += Loop::step()) {
    const T* src = x + row * dim;
    T* dst = y + row * dim;
    const T log_total = row_log_sum_exp<T, kTpr>(src, dim, scratch);
    for (std::int64_t d = Loop::lane(); d < dim; d += kTpr)
      dst[d] = log ? src[d] - log_total : m_exp(src[d] - log_total);
  }
}

// Any inner: the CPU's three loops, one thread per (o, i).
template <class T>
__global__ void softmax_columns_kernel(bool log, std::int64_t outer, std::int64_t dim,
                                       std::int64_t inner, const T* x, T* y) {
  const std::int64_t n = outer * inner;
  for (std::int64_t k = grid_start(); k < n; k += grid_step()) {
    const std::int64_t base = (k / inner) * dim * inner + k % inner;
    const T* src = x + base;
    T* dst = y + base;
    T m = rows::neg_inf<T>();
    for (std::int64_t d = 0; d < dim; ++d) m = src[d * inner] > m ? src[d * inner] : m;
    T total = T(0);
    for (std::int64_t d = 0; d < dim; ++d) total += m_exp(src[d * inner] - m);
    const T log_total = m_log(total) + m;
    for (std::int64_t d = 0; d < dim; ++d)
      dst[d * inner] = log ? src[d * inner] - log_total : m_exp(src[d * inner] - log_total);
  }
}

// softmax:     dx = y * (dy - sum(dy * y))
// log_softmax: dx = dy - exp(y) * sum(dy)
template <class T, int kTpr>
__global__ void softmax_backward_rows_kernel(bool log, std::int64_t outer, std::int64_t dim,
                                             const T* y, const T* dy, T* dx) {
  using Loop = rows::RowLoop<kTpr>;
  __shared__ rows::SumAcc<T> scratch[32];
  for (std::int64_t row = Loop::first(); row < outer; row += Loop::step()) {
    const std::int64_t base = row * dim;
    rows::SumAcc<T> dot{T(0)};
    for (std::int64_t d = Loop::lane(); d < dim; d += kTpr)
      dot.v += formulas::softmax_dot_term(log, y[base + d], dy[base + d]);
    const T total = rows::group_reduce<kTpr>(dot, scratch).v;
    for (std::int64_t d = Loop::lane(); d < dim; d += kTpr) {
      const std::int64_t k = base + d;
      dx[k] = formulas::softmax_grad(log, y[k], dy[k], total);
    }
  }
}

template <class T>
__global__ void softmax_backward_columns_kernel(bool log, std::int64_t outer, std::int64_t dim,
                                                std::int64_t inner, const T* y, const T* dy,
                                                T* dx) {
  const std::int64_t n = outer * inner;
  for (std::int64_t k = grid_start(); k < n; k += grid_step()) {
    const std::int64_t base = (k / inner) * dim * inner + k % inner;
    T dot = T(0);
    for (std::int64_t d = 0; d < dim; ++d)
      dot += formulas::softmax_dot_term(log, y[base + d * inner], dy[base + d * inner]);
    for (std::int64_t d = 0; d < dim; ++d) {
      const std::int64_t j = base + d * inner;
      dx[j] = formulas::softmax_grad(log, y[j], dy[j], dot);
    }
  }
}

// loss_r = -on * log p[r, label] - off * sum_j log p[r, j] (formulas::cross_entropy_loss);
// probs = exp(log p) is kept for the backward pass.
template <class T, int kTpr>
__global__ void cross_entropy_kernel(std::int64_t n, std::int64_t c,
                                     formulas::SmoothedTarget<T> target, const T* logits,
                                     const std::int64_t* labels, T* loss, T* probs) {
  using Loop = rows::RowLoop<kTpr>;
  __shared__ rows::MaxExpSumAcc<T> stats_scratch[32];
  __shared__ rows::SumAcc<T> sum_scratch[32];
  for (std::int64_t row = Loop::first(); row < n; row += Loop::step()) {
    const T* z = logits + row * c;
    T* p = probs + row * c;
    const T log_total = row_log_sum_exp<T, kTpr>(z, c, stats_scratch);
    rows::SumAcc<T> sum_logp{T(0)};
    for (std::int64_t j = Loop::lane(); j < c; j += kTpr) {
      const T logp = z[j] - log_total;
      sum_logp.v += logp;
      p[j] = m_exp(logp);
    }
    sum_logp = rows::group_reduce<kTpr>(sum_logp, sum_scratch);
    if (Loop::lane() == 0)
      loss[row] = formulas::cross_entropy_loss(target, z[labels[row]], log_total, sum_logp.v);
  }
}

// grad = scale * (probs - target), target = off everywhere plus on at the label; the label
// entry is rounded in the CPU's two steps.
template <class T>
__global__ void cross_entropy_backward_kernel(std::int64_t n, std::int64_t c,
                                              formulas::CrossEntropyGradScalars<T> scalars,
                                              const T* probs, const std::int64_t* labels,
                                              T* grad) {
  const std::int64_t total = n * c;
  for (std::int64_t k = grid_start(); k < total; k += grid_step()) {
    T g = formulas::cross_entropy_grad(scalars, probs[k]);
    if (k % c == labels[k / c]) g -= scalars.label_shift;
    grad[k] = g;
  }
}

}  // namespace

void CudaBackend::softmax(DType t, bool log, std::int64_t outer, std::int64_t dim,
                          std::int64_t inner, const void* x, void* y) {
  if (outer <= 0 || dim <= 0 || inner <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* src = static_cast<const T*>(x);
    T* dst = static_cast<T*>(y);
    if (inner == 1) {
      rows::launch_rows(outer, dim, [&](auto tpr, unsigned grid, unsigned block) {
        softmax_rows_kernel<T, decltype(tpr)::value><<<grid, block, 0, stream()>>>(log, outer, dim,
                                                                                    src, dst);
      });
    } else {
      softmax_columns_kernel<<<blocks_for(outer * inner), kThreadsPerBlock, 0, stream()>>>(
          log, outer, dim, inner, src, dst);
    }
    check_launch("softmax");
  });
}

void CudaBackend::softmax_backward(DType t, bool log, std::int64_t outer, std::int64_t dim,
                                   std::int64_t inner, const void* y, const void* dy, void* dx) {
  if (outer <= 0 || dim <= 0 || inner <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* yt = static_cast<const T*>(y);
    const T* dyt = static_cast<const T*>(dy);
    T* dxt = static_cast<T*>(dx);
    if (inner == 1) {
      rows::launch_rows(outer, dim, [&](auto tpr, unsigned grid, unsigned block) {
        softmax_backward_rows_kernel<T, decltype(tpr)::value>
            <<<grid, block, 0, stream()>>>(log, outer, dim, yt, dyt, dxt);
      });
    } else {
      softmax_backward_columns_kernel<<<blocks_for(outer * inner), kThreadsPerBlock, 0,
                                        stream()>>>(log, outer, dim, inner, yt, dyt, dxt);
    }
    check_launch("softmax_backward");
  });
}

void CudaBackend::cross_entropy(DType t, std::int64_t n, std::int64_t c, double smoothing,
                                const void* logits, const std::int64_t* labels, void* loss,
                                void* probs) {
  if (n <= 0 || c <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const auto target = formulas::SmoothedTarget<T>::from(smoothing, c);
    rows::launch_rows(n, c, [&](auto tpr, unsigned grid, unsigned block) {
      cross_entropy_kernel<T, decltype(tpr)::value><<<grid, block, 0, stream()>>>(
          n, c, target, static_cast<const T*>(logits), labels, static_cast<T*>(loss),
          static_cast<T*>(probs));
    });
    check_launch("cross_entropy");
  });
}

void CudaBackend::cross_entropy_backward(DType t, std::int64_t n, std::int64_t c,
                                         double smoothing, double scale, const void* probs,
                                         const std::int64_t* labels, void* grad_logits) {
  if (n <= 0 || c <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const auto scalars = formulas::CrossEntropyGradScalars<T>::from(smoothing, c, scale);
    cross_entropy_backward_kernel<<<blocks_for(n * c), kThreadsPerBlock, 0, stream()>>>(
        n, c, scalars, static_cast<const T*>(probs), labels, static_cast<T*>(grad_logits));
    check_launch("cross_entropy_backward");
  });
}

}  // namespace shrink::kernels::cuda
