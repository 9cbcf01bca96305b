// Batch normalisation over (n, c, hw) and its gradients (kernels/kernel_list.h batch_norm,
// batch_norm_backward; the CPU twin is kernels/cpu/batch_norm.cpp).
//
// Own kernels rather than cuDNN's: cuDNN's batch norm matches the momentum convention and
// the unbiased running variance, but needs gamma and beta (ours may be null), has no backward
// in evaluation mode, and accumulates float32 statistics in float32, where the contract (and
// the CPU) sums in double. So each channel's statistics are reduced by one block in double,
// two-pass (mean, then the sum of squared deviations: the one-pass E[x^2] - E[x]^2 cancels
// when |mean| >> std), with row_reduce.cuh's fixed butterfly: the same bits every run. The
// block then writes the per-channel coefficients (in T, as the CPU forms them), and one
// elementwise pass over all n c hw elements applies them.
#include <cuda_runtime.h>

#include <cmath>

#include "kernels/batch_norm_buffers.h"
#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/row_reduce.cuh"

namespace shrink::kernels::cuda {

namespace {

constexpr int kChannelThreads = 512;  // one block per channel
constexpr std::int64_t kMaxChannelBlocks = 65535;

unsigned channel_blocks(std::int64_t c) {
  return static_cast<unsigned>(c < kMaxChannelBlocks ? c : kMaxChannelBlocks);
}

// Element k in [0, n hw) of channel ch: sample k / hw, position k % hw.
__device__ __forceinline__ std::int64_t channel_index(std::int64_t k, std::int64_t c,
                                                      std::int64_t hw, std::int64_t ch) {
  const std::int64_t i = k / hw;
  return (i * c + ch) * hw + (k - i * hw);
}

// Two sums reduced together (backward's sum dy and sum dy (x - mean)).
struct Sum2Acc {
  double a, b;
  static __device__ Sum2Acc identity() { return {0.0, 0.0}; }
  static __device__ Sum2Acc combine(Sum2Acc x, Sum2Acc y) { return {x.a + y.a, x.b + y.b}; }
  static __device__ Sum2Acc shfl_xor(Sum2Acc x, int m) {
    return {__shfl_xor_sync(rows::kFullMask, x.a, m), __shfl_xor_sync(rows::kFullMask, x.b, m)};
  }
};

// Per-channel forward coefficients: y = (x - center) scale + shift.
template <class T>
struct Affine {
  T center, scale, shift;
};

template <class T>
__device__ Affine<T> affine(double mean, double invstd, const T* gamma, const T* beta,
                            std::int64_t ch) {
  const double g = gamma ? static_cast<double>(gamma[ch]) : 1.0;
  return {static_cast<T>(mean), static_cast<T>(g * invstd), beta ? beta[ch] : T(0)};
}

// Training: batch mean and biased variance of each channel; saved statistics, running update
// (unbiased variance; NaN for a single value per channel, as the CPU and PyTorch) and the
// channel's coefficients.
template <class T>
__global__ void batch_stats_kernel(std::int64_t n, std::int64_t c, std::int64_t hw,
                                   double momentum, double eps, const T* x, const T* gamma,
                                   const T* beta, T* running_mean, T* running_var, T* save_mean,
                                   T* save_invstd, Affine<T>* coef) {
  using Acc = rows::SumAcc<double>;
  __shared__ Acc scratch[32];
  const std::int64_t m = n * hw;
  for (std::int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    Acc total = Acc::identity();
    for (std::int64_t k = threadIdx.x; k < m; k += kChannelThreads)
      total.v += static_cast<double>(x[channel_index(k, c, hw, ch)]);
    total = rows::group_reduce<kChannelThreads>(total, scratch);
    const double mean = total.v / static_cast<double>(m);
    Acc squares = Acc::identity();
    for (std::int64_t k = threadIdx.x; k < m; k += kChannelThreads) {
      const double d = static_cast<double>(x[channel_index(k, c, hw, ch)]) - mean;
      squares.v += d * d;
    }
    squares = rows::group_reduce<kChannelThreads>(squares, scratch);
    if (threadIdx.x == 0) {
      const double invstd = 1.0 / sqrt(squares.v / static_cast<double>(m) + eps);
      save_mean[ch] = static_cast<T>(mean);
      save_invstd[ch] = static_cast<T>(invstd);
      if (running_mean) {
        const double unbiased = m > 1 ? squares.v / static_cast<double>(m - 1) : nan("");
        running_mean[ch] = static_cast<T>((1 - momentum) * static_cast<double>(running_mean[ch]) +
                                          momentum * mean);
        running_var[ch] = static_cast<T>((1 - momentum) * static_cast<double>(running_var[ch]) +
                                         momentum * unbiased);
      }
      coef[ch] = affine(mean, invstd, gamma, beta, ch);
    }
  }
}

// Evaluation: the running statistics' coefficients, one thread per channel.
template <class T>
__global__ void running_coef_kernel(std::int64_t c, double eps, const T* gamma, const T* beta,
                                    const T* running_mean, const T* running_var, Affine<T>* coef) {
  for (std::int64_t ch = grid_start(); ch < c; ch += grid_step()) {
    const double invstd = 1.0 / sqrt(static_cast<double>(running_var[ch]) + eps);
    coef[ch] = affine(static_cast<double>(running_mean[ch]), invstd, gamma, beta, ch);
  }
}

template <class T>
__global__ void normalize_kernel(std::int64_t total, std::int64_t c, std::int64_t hw,
                                 const Affine<T>* coef, const T* x, T* y) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const Affine<T> a = coef[e / hw % c];
    y[e] = (x[e] - a.center) * a.scale + a.shift;
  }
}

// Per-channel backward coefficients: dx = k (dy - mean_dy - (x - mu) coef).
template <class T>
struct GradCoef {
  T k, mean_dy, coef, mu;
};

// sum dy and sum dy (x - mean) per channel (when training needs them, or dgamma / dbeta are
// asked for), dgamma = sum dy xhat, dbeta = sum dy, and the channel's coefficients.
template <class T>
__global__ void grad_stats_kernel(std::int64_t n, std::int64_t c, std::int64_t hw, bool training,
                                  bool reduce, const T* x, const T* dy, const T* gamma,
                                  const T* mean, const T* invstd, T* dgamma, T* dbeta,
                                  GradCoef<T>* coef) {
  __shared__ Sum2Acc scratch[32];
  const std::int64_t m = n * hw;
  for (std::int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    const double mu = static_cast<double>(mean[ch]), is = static_cast<double>(invstd[ch]);
    Sum2Acc s = Sum2Acc::identity();
    if (reduce) {
      for (std::int64_t k = threadIdx.x; k < m; k += kChannelThreads) {
        const std::int64_t e = channel_index(k, c, hw, ch);
        const double d = static_cast<double>(dy[e]);
        s.a += d;
        s.b += d * (static_cast<double>(x[e]) - mu);
      }
      s = rows::group_reduce<kChannelThreads>(s, scratch);
    }
    if (threadIdx.x == 0) {
      const double sum_dy_xhat = s.b * is;
      if (dgamma) dgamma[ch] = static_cast<T>(sum_dy_xhat);
      if (dbeta) dbeta[ch] = static_cast<T>(s.a);
      const double g = gamma ? static_cast<double>(gamma[ch]) : 1.0;
      const double md = static_cast<double>(m);
      coef[ch] = {static_cast<T>(g * is), static_cast<T>(training ? s.a / md : 0.0),
                  static_cast<T>(training ? is * sum_dy_xhat / md : 0.0), mean[ch]};
    }
  }
}

template <class T>
__global__ void grad_input_kernel(std::int64_t total, std::int64_t c, std::int64_t hw,
                                  const GradCoef<T>* coef, const T* x, const T* dy, T* dx) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const GradCoef<T> g = coef[e / hw % c];
    // x is null in evaluation mode without dgamma / dbeta (kernel_list.h): dx = k dy.
    dx[e] = x ? g.k * (dy[e] - g.mean_dy - (x[e] - g.mu) * g.coef) : g.k * dy[e];
  }
}

// Per-channel coefficients live in a block of the caching allocator for one call (released
// stream-ordered, after the kernels that read them are queued).
class ChannelBuffer {
 public:
  ChannelBuffer(Backend& b, std::size_t bytes) : b_(b), bytes_(bytes), p_(b.allocate(bytes)) {}
  ChannelBuffer(const ChannelBuffer&) = delete;
  ChannelBuffer& operator=(const ChannelBuffer&) = delete;
  ~ChannelBuffer() { b_.deallocate(p_, bytes_); }
  template <class U> U* as() const { return static_cast<U*>(p_); }

 private:
  Backend& b_;
  std::size_t bytes_;
  void* p_;
};

}  // namespace

void CudaBackend::batch_norm(DType t, std::int64_t n, std::int64_t c, std::int64_t hw,
                             bool training, double momentum, double eps, const void* x,
                             const void* gamma, const void* beta, void* running_mean,
                             void* running_var, void* save_mean, void* save_invstd, void* y) {
  check_batch_norm_buffers(training, running_mean, running_var, save_mean, save_invstd);
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    if (c <= 0) return;
    ChannelBuffer coef(*this, static_cast<std::size_t>(c) * sizeof(Affine<T>));
    const T* g = static_cast<const T*>(gamma);
    const T* b = static_cast<const T*>(beta);
    if (training) {
      batch_stats_kernel<T><<<channel_blocks(c), kChannelThreads, 0, stream()>>>(
          n, c, hw, momentum, eps, static_cast<const T*>(x), g, b, static_cast<T*>(running_mean),
          static_cast<T*>(running_var), static_cast<T*>(save_mean), static_cast<T*>(save_invstd),
          coef.as<Affine<T>>());
    } else {
      running_coef_kernel<T><<<blocks_for(c), kThreadsPerBlock, 0, stream()>>>(
          c, eps, g, b, static_cast<const T*>(running_mean), static_cast<const T*>(running_var),
          coef.as<Affine<T>>());
    }
    check_launch("batch_norm (statistics)");
    const std::int64_t total = n * c * hw;
    if (total > 0) {
      normalize_kernel<T><<<blocks_for(total), kThreadsPerBlock, 0, stream()>>>(
          total, c, hw, coef.as<Affine<T>>(), static_cast<const T*>(x), static_cast<T*>(y));
      check_launch("batch_norm (normalize)");
    }
  }, "batch_norm");
}

void CudaBackend::batch_norm_backward(DType t, std::int64_t n, std::int64_t c, std::int64_t hw,
                                      bool training, const void* x, const void* dy,
                                      const void* gamma, const void* mean, const void* invstd,
                                      void* dx, void* dgamma, void* dbeta) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    if (c <= 0) return;
    ChannelBuffer coef(*this, static_cast<std::size_t>(c) * sizeof(GradCoef<T>));
    const bool reduce = training || dgamma != nullptr || dbeta != nullptr;
    grad_stats_kernel<T><<<channel_blocks(c), kChannelThreads, 0, stream()>>>(
        n, c, hw, training, reduce, static_cast<const T*>(x), static_cast<const T*>(dy),
        static_cast<const T*>(gamma), static_cast<const T*>(mean), static_cast<const T*>(invstd),
        static_cast<T*>(dgamma), static_cast<T*>(dbeta), coef.as<GradCoef<T>>());
    check_launch("batch_norm_backward (statistics)");
    const std::int64_t total = n * c * hw;
    if (total > 0) {
      grad_input_kernel<T><<<blocks_for(total), kThreadsPerBlock, 0, stream()>>>(
          total, c, hw, coef.as<GradCoef<T>>(), static_cast<const T*>(x),
          static_cast<const T*>(dy), static_cast<T*>(dx));
      check_launch("batch_norm_backward (input gradient)");
    }
  }, "batch_norm_backward");
}

}  // namespace shrink::kernels::cuda
