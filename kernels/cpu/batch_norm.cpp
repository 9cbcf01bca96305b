// Batch normalisation over (n, c, hw) and its gradients (kernels/kernel_list.h batch_norm,
// batch_norm_backward). A channel is n runs of hw values; each channel is owned by one thread
// and its statistics are summed in double with four accumulators in a fixed order, so results
// do not depend on the thread count. Mean and variance take two passes (the one-pass
// E[x^2] - E[x]^2 cancels badly when |mean| >> std); the output is y = (x - mean) scale + beta
// with scale = gamma invstd: folding the mean into the shift (x scale + (beta - mean scale))
// would save a subtraction but lose |mean| invstd ulps to cancellation when |mean| >> std.
#include <cmath>
#include <limits>

#include "kernels/batch_norm_buffers.h"
#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels::cpu {

namespace {

// sum_k f(src[k]) over one run, in double; four chains hide the add latency.
template <class T, class F>
double run_total(const T* src, std::int64_t len, F f) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
  for (std::int64_t b = 0; b < len / 4; ++b) {
    a0 += f(static_cast<double>(src[4 * b]));
    a1 += f(static_cast<double>(src[4 * b + 1]));
    a2 += f(static_cast<double>(src[4 * b + 2]));
    a3 += f(static_cast<double>(src[4 * b + 3]));
  }
  for (std::int64_t k = len / 4 * 4; k < len; ++k) a0 += f(static_cast<double>(src[k]));
  return (a0 + a1) + (a2 + a3);
}

// sum_k dy[k] and sum_k dy[k] (x[k] - mean) over one run, in double.
template <class T>
void run_gradient_totals(const T* x, const T* dy, std::int64_t len, double mean, double& sum_dy,
                         double& sum_dy_centered) {
  double s0 = 0, s1 = 0, c0 = 0, c1 = 0;
#pragma omp simd reduction(+ : s0, s1, c0, c1)
  for (std::int64_t b = 0; b < len / 2; ++b) {
    const double d0 = static_cast<double>(dy[2 * b]), d1 = static_cast<double>(dy[2 * b + 1]);
    s0 += d0;
    s1 += d1;
    c0 += d0 * (static_cast<double>(x[2 * b]) - mean);
    c1 += d1 * (static_cast<double>(x[2 * b + 1]) - mean);
  }
  for (std::int64_t k = len / 2 * 2; k < len; ++k) {
    const double d = static_cast<double>(dy[k]);
    s0 += d;
    c0 += d * (static_cast<double>(x[k]) - mean);
  }
  sum_dy += s0 + s1;
  sum_dy_centered += c0 + c1;
}

template <class T>
void batch_norm_typed(std::int64_t n, std::int64_t c, std::int64_t hw, bool training,
                      double momentum, double eps, const T* x, const T* gamma, const T* beta,
                      T* running_mean, T* running_var, T* save_mean, T* save_invstd, T* y) {
  const std::int64_t m = n * hw;
#pragma omp parallel for schedule(static) if (n * c * hw > kParallelGrain && c > 1)
  for (std::int64_t ch = 0; ch < c; ++ch) {
    double mean, invstd;
    if (training) {
      double total = 0;
      for (std::int64_t i = 0; i < n; ++i)
        total += run_total(x + (i * c + ch) * hw, hw, [](double v) { return v; });
      mean = total / static_cast<double>(m);
      double squares = 0;
      for (std::int64_t i = 0; i < n; ++i)
        squares += run_total(x + (i * c + ch) * hw, hw, [mean](double v) { return (v - mean) * (v - mean); });
      invstd = 1.0 / std::sqrt(squares / static_cast<double>(m) + eps);
      save_mean[ch] = static_cast<T>(mean);
      save_invstd[ch] = static_cast<T>(invstd);
      if (running_mean) {
        // One value per channel leaves the unbiased variance 0 / 0, as in PyTorch's kernels.
        const double unbiased =
            m > 1 ? squares / static_cast<double>(m - 1) : std::numeric_limits<double>::quiet_NaN();
        running_mean[ch] = static_cast<T>((1 - momentum) * static_cast<double>(running_mean[ch]) + momentum * mean);
        running_var[ch] = static_cast<T>((1 - momentum) * static_cast<double>(running_var[ch]) + momentum * unbiased);
      }
    } else {
      mean = static_cast<double>(running_mean[ch]);
      invstd = 1.0 / std::sqrt(static_cast<double>(running_var[ch]) + eps);
    }
    const T scale = static_cast<T>((gamma ? static_cast<double>(gamma[ch]) : 1.0) * invstd);
    const T shift = beta ? beta[ch] : T(0);
    const T center = static_cast<T>(mean);
    for (std::int64_t i = 0; i < n; ++i) {
      const T* xr = x + (i * c + ch) * hw;
      T* yr = y + (i * c + ch) * hw;
#pragma omp simd
      for (std::int64_t k = 0; k < hw; ++k) yr[k] = (xr[k] - center) * scale + shift;
    }
  }
}

template <class T>
void batch_norm_backward_typed(std::int64_t n, std::int64_t c, std::int64_t hw, bool training,
                               const T* x, const T* dy, const T* gamma, const T* mean,
                               const T* invstd, T* dx, T* dgamma, T* dbeta) {
  const double m = static_cast<double>(n * hw);
#pragma omp parallel for schedule(static) if (n * c * hw > kParallelGrain && c > 1)
  for (std::int64_t ch = 0; ch < c; ++ch) {
    const double mu = static_cast<double>(mean[ch]), is = static_cast<double>(invstd[ch]);
    double sum_dy = 0, sum_dy_centered = 0;
    if (training || dgamma || dbeta)
      for (std::int64_t i = 0; i < n; ++i)
        run_gradient_totals(x + (i * c + ch) * hw, dy + (i * c + ch) * hw, hw, mu, sum_dy,
                            sum_dy_centered);
    const double sum_dy_xhat = sum_dy_centered * is;
    if (dgamma) dgamma[ch] = static_cast<T>(sum_dy_xhat);
    if (dbeta) dbeta[ch] = static_cast<T>(sum_dy);
    // dx = k (dy - mean(dy) - (x - mean) invstd mean(dy xhat)), k = gamma invstd.
    const T k = static_cast<T>((gamma ? static_cast<double>(gamma[ch]) : 1.0) * is);
    const T mean_dy = static_cast<T>(training ? sum_dy / m : 0.0);
    const T coef = static_cast<T>(training ? is * sum_dy_xhat / m : 0.0);
    const T mu_t = mean[ch];
    for (std::int64_t i = 0; i < n; ++i) {
      const T* dyr = dy + (i * c + ch) * hw;
      T* dxr = dx + (i * c + ch) * hw;
      if (!x) {  // evaluation mode, no dgamma / dbeta: x was not kept (kernel_list.h)
#pragma omp simd
        for (std::int64_t j = 0; j < hw; ++j) dxr[j] = k * dyr[j];
        continue;
      }
      const T* xr = x + (i * c + ch) * hw;
#pragma omp simd
      for (std::int64_t j = 0; j < hw; ++j) dxr[j] = k * (dyr[j] - mean_dy - (xr[j] - mu_t) * coef);
    }
  }
}

}  // namespace

void CpuBackend::batch_norm(DType t, std::int64_t n, std::int64_t c, std::int64_t hw,
                            bool training, double momentum, double eps, const void* x,
                            const void* gamma, const void* beta, void* running_mean,
                            void* running_var, void* save_mean, void* save_invstd, void* y) {
  check_batch_norm_buffers(training, running_mean, running_var, save_mean, save_invstd);
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    batch_norm_typed(n, c, hw, training, momentum, eps, static_cast<const T*>(x),
                     static_cast<const T*>(gamma), static_cast<const T*>(beta),
                     static_cast<T*>(running_mean), static_cast<T*>(running_var),
                     static_cast<T*>(save_mean), static_cast<T*>(save_invstd), static_cast<T*>(y));
  }, "batch_norm");
}

void CpuBackend::batch_norm_backward(DType t, std::int64_t n, std::int64_t c, std::int64_t hw,
                                     bool training, const void* x, const void* dy,
                                     const void* gamma, const void* mean, const void* invstd,
                                     void* dx, void* dgamma, void* dbeta) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    batch_norm_backward_typed(n, c, hw, training, static_cast<const T*>(x),
                              static_cast<const T*>(dy), static_cast<const T*>(gamma),
                              static_cast<const T*>(mean), static_cast<const T*>(invstd),
                              static_cast<T*>(dx), static_cast<T*>(dgamma), static_cast<T*>(dbeta));
  }, "batch_norm_backward");
}

}  // namespace shrink::kernels::cpu
