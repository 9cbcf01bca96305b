// Reference batch normalisation over (n, c, hw), the textbook two-pass way in double:
// mean, biased variance, xhat = (x - mean) / sqrt(var + eps), y = gamma xhat + beta, the
// running statistics' momentum update with the unbiased variance, and the gradients
// (Ioffe & Szegedy 2015, section 3). The tests' oracle for kernels/cpu/batch_norm.cpp.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

namespace shrink::kernels::reference {

// Same contract as the batch_norm kernel (kernels/kernel_list.h). With one value per channel
// (n hw == 1) the unbiased variance is 0 / 0: the running variance becomes NaN, as PyTorch's
// kernels compute it (its functional layer refuses that case; so does core's batch_norm).
template <class T>
void batch_norm(std::int64_t n, std::int64_t c, std::int64_t hw, bool training, double momentum,
                double eps, const T* x, const T* gamma, const T* beta, T* running_mean,
                T* running_var, T* save_mean, T* save_invstd, T* y) {
  const std::int64_t m = n * hw;
  auto at = [&](std::int64_t i, std::int64_t ch, std::int64_t k) { return (i * c + ch) * hw + k; };
  for (std::int64_t ch = 0; ch < c; ++ch) {
    double mean = 0, invstd = 0;
    if (training) {
      double total = 0;
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t k = 0; k < hw; ++k) total += static_cast<double>(x[at(i, ch, k)]);
      mean = total / static_cast<double>(m);
      double squares = 0;
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t k = 0; k < hw; ++k) {
          const double d = static_cast<double>(x[at(i, ch, k)]) - mean;
          squares += d * d;
        }
      const double var = squares / static_cast<double>(m);
      invstd = 1.0 / std::sqrt(var + eps);
      save_mean[ch] = static_cast<T>(mean);
      save_invstd[ch] = static_cast<T>(invstd);
      if (running_mean) {
        const double unbiased =
            m > 1 ? squares / static_cast<double>(m - 1) : std::numeric_limits<double>::quiet_NaN();
        running_mean[ch] = static_cast<T>((1 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = static_cast<T>((1 - momentum) * running_var[ch] + momentum * unbiased);
      }
    } else {
      mean = static_cast<double>(running_mean[ch]);
      invstd = 1.0 / std::sqrt(static_cast<double>(running_var[ch]) + eps);
    }
    const double g = gamma ? static_cast<double>(gamma[ch]) : 1.0;
    const double b = beta ? static_cast<double>(beta[ch]) : 0.0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < hw; ++k)
        y[at(i, ch, k)] = static_cast<T>((static_cast<double>(x[at(i, ch, k)]) - mean) * invstd * g + b);
  }
}

// dx = gamma invstd (dy - [training] (mean(dy) + xhat mean(dy xhat))), dgamma = sum dy xhat,
// dbeta = sum dy, per channel; mean / invstd are the statistics the forward used.
template <class T>
void batch_norm_backward(std::int64_t n, std::int64_t c, std::int64_t hw, bool training,
                         const T* x, const T* dy, const T* gamma, const T* mean, const T* invstd,
                         T* dx, T* dgamma, T* dbeta) {
  const double m = static_cast<double>(n * hw);
  auto at = [&](std::int64_t i, std::int64_t ch, std::int64_t k) { return (i * c + ch) * hw + k; };
  for (std::int64_t ch = 0; ch < c; ++ch) {
    const double mu = static_cast<double>(mean[ch]), is = static_cast<double>(invstd[ch]);
    const double g = gamma ? static_cast<double>(gamma[ch]) : 1.0;
    double sum_dy = 0, sum_dy_xhat = 0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < hw; ++k) {
        const double d = static_cast<double>(dy[at(i, ch, k)]);
        sum_dy += d;
        sum_dy_xhat += d * (static_cast<double>(x[at(i, ch, k)]) - mu) * is;
      }
    if (dgamma) dgamma[ch] = static_cast<T>(sum_dy_xhat);
    if (dbeta) dbeta[ch] = static_cast<T>(sum_dy);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < hw; ++k) {
        const double d = static_cast<double>(dy[at(i, ch, k)]);
        const double xhat = (static_cast<double>(x[at(i, ch, k)]) - mu) * is;
        const double inner = training ? d - sum_dy / m - xhat * sum_dy_xhat / m : d;
        dx[at(i, ch, k)] = static_cast<T>(g * is * inner);
      }
  }
}

}  // namespace shrink::kernels::reference
