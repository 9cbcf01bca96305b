// 2-D convolution over NCHW (kernels/kernel_list.h conv2d, conv2d_backward_input,
// conv2d_backward_weight; the shape is kernels::Conv2dShape).
//
// General case, per image and per group (cig = c_in/groups, cog = c_out/groups,
// K = cig kh kw, P = out_h out_w), on the packed GEMM:
//   forward          col (K, P) = im2col(x_g);   y_g (cog, P) = W_g (cog, K) col  (+ bias)
//   backward input   dcol (K, P) = W_g^T dy_g;   dx_g = col2im(dcol)
//   backward weight  dW_g (cog, K) += dy_g (cog, P) col^T, images in order 0, 1, ..., n-1
// A 1x1, stride-1, unpadded convolution skips im2col: col is x_g itself.
// Depthwise (groups == c_in == c_out) is a direct loop instead: its GEMM would have m = 1.
//
// Threading and determinism: forward and backward-input images are independent, so with at
// least as many images as threads each thread takes whole images (serial GEMM inside; the
// GEMM declines to fork within a parallel region); otherwise images run in turn and the GEMM
// and im2col thread internally. Backward-weight sums over images, so images run in turn with
// the GEMM's fixed per-element k order. Every output element is thus summed in an order that
// does not depend on the thread count.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/im2col.h"

namespace shrink::kernels::cpu {

namespace {

// Below this many multiply-adds a convolution runs on one thread.
constexpr std::int64_t kConvParallelWork = 64 * 64 * 64;

inline void gemm_t(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
                   const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
                   float beta, float* c, std::int64_t ldc) {
  sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm_t(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
                   const double* a, std::int64_t lda, const double* b, std::int64_t ldb,
                   double beta, double* c, std::int64_t ldc) {
  dgemm(ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

// The im2col buffer: one per thread, grow-only, kept across calls. A training step calls the
// same shapes every iteration, so after the first step no call allocates or page-faults
// (the same reason the GEMM's packing buffers are thread_local); one per thread because
// image-parallel calls fill their own columns concurrently.
template <class T>
T* scratch(std::int64_t elements) {
  thread_local std::vector<T> buffer;
  if (static_cast<std::int64_t>(buffer.size()) < elements)
    buffer.resize(static_cast<std::size_t>(elements));
  return buffer.data();
}

struct Dims {
  std::int64_t cig, cog, k, p, hw;  // K = cig kh kw rows of col, P = out_h out_w columns
  bool direct;                      // 1x1, stride 1, no padding: col = x_g
  std::int64_t work;                // multiply-adds of the whole convolution
};
Dims dims_of(const Conv2dShape& s) {
  Dims d;
  d.cig = s.c_in / s.groups;
  d.cog = s.c_out / s.groups;
  d.k = d.cig * s.kh * s.kw;
  d.p = s.out_h() * s.out_w();
  d.hw = s.h * s.w;
  d.direct = s.kh == 1 && s.kw == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 &&
             s.pad_w == 0;
  d.work = s.n * s.c_out * d.p * d.k;
  return d;
}

// Whole images per thread: enough images to occupy every thread, and enough work to fork.
bool images_in_parallel(const Conv2dShape& s, const Dims& d) {
  return s.n > 1 && s.n >= omp_get_max_threads() && d.work > kConvParallelWork;
}

bool is_depthwise(const Conv2dShape& s) { return s.groups == s.c_in && s.groups == s.c_out; }

// ---- im2col + GEMM ----

template <class T>
void forward_gemm(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const Dims d = dims_of(s);
#pragma omp parallel for schedule(static) if (images_in_parallel(s, d))
  for (std::int64_t n = 0; n < s.n; ++n) {
    const bool threaded = !omp_in_parallel();
    T* col = d.direct ? nullptr : scratch<T>(d.k * d.p);  // (K, P)
    for (std::int64_t g = 0; g < s.groups; ++g) {
      const T* x_g = x + (n * s.c_in + g * d.cig) * d.hw;  // (cig, h, w)
      T* y_g = y + (n * s.c_out + g * d.cog) * d.p;        // (cog, P)
      if (!d.direct) im2col(s, d.cig, x_g, col, threaded);
      gemm_t(false, false, d.cog, d.p, d.k, w + g * d.cog * d.k, d.k, d.direct ? x_g : col, d.p,
             T(0), y_g, d.p);
      if (bias)
        for (std::int64_t o = 0; o < d.cog; ++o) {
          const T b = bias[g * d.cog + o];
          T* row = y_g + o * d.p;
#pragma omp simd
          for (std::int64_t j = 0; j < d.p; ++j) row[j] += b;
        }
    }
  }
}

template <class T>
void backward_input_gemm(const Conv2dShape& s, const T* w, const T* dy, T* dx) {
  const Dims d = dims_of(s);
#pragma omp parallel for schedule(static) if (images_in_parallel(s, d))
  for (std::int64_t n = 0; n < s.n; ++n) {
    const bool threaded = !omp_in_parallel();
    T* dcol = d.direct ? nullptr : scratch<T>(d.k * d.p);  // (K, P)
    for (std::int64_t g = 0; g < s.groups; ++g) {
      const T* dy_g = dy + (n * s.c_out + g * d.cog) * d.p;  // (cog, P)
      T* dx_g = dx + (n * s.c_in + g * d.cig) * d.hw;        // (cig, h, w)
      const T* w_g = w + g * d.cog * d.k;                    // (cog, K)
      if (d.direct) {  // dx_g (cig, hw) = W_g^T dy_g
        gemm_t(true, false, d.k, d.p, d.cog, w_g, d.k, dy_g, d.p, T(0), dx_g, d.p);
        continue;
      }
      gemm_t(true, false, d.k, d.p, d.cog, w_g, d.k, dy_g, d.p, T(0), dcol, d.p);
      std::fill(dx_g, dx_g + d.cig * d.hw, T(0));
      col2im_add(s, d.cig, dcol, dx_g, threaded);
    }
  }
}

template <class T>
void backward_weight_gemm(const Conv2dShape& s, const T* x, const T* dy, T* dw) {
  const Dims d = dims_of(s);
  if (s.n == 0) std::fill(dw, dw + s.c_out * d.k, T(0));
  T* col = d.direct ? nullptr : scratch<T>(d.k * d.p);  // (K, P)
  for (std::int64_t n = 0; n < s.n; ++n)
    for (std::int64_t g = 0; g < s.groups; ++g) {
      const T* x_g = x + (n * s.c_in + g * d.cig) * d.hw;
      const T* dy_g = dy + (n * s.c_out + g * d.cog) * d.p;
      if (!d.direct) im2col(s, d.cig, x_g, col, true);
      // dW_g (cog, K) (+)= dy_g (cog, P) col^T; the first image overwrites.
      gemm_t(false, true, d.cog, d.k, d.p, dy_g, d.p, d.direct ? x_g : col, d.p,
             n == 0 ? T(0) : T(1), dw + g * d.cog * d.k, d.k);
    }
}

// ---- depthwise: one (n, c) plane against one kh x kw filter ----
// Each tap (r, q) adds w[c, r, q] times a shifted input row to an output row; inside
// tap_range the loop has no bounds test (contiguous and vectorised at stride 1).

template <class T>
void forward_depthwise(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const std::int64_t oh = s.out_h(), ow = s.out_w(), planes = s.n * s.c_in;
#pragma omp parallel for schedule(static) if (planes > 1 && planes * oh * ow * s.kh * s.kw > kParallelGrain)
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    const std::int64_t c = plane % s.c_in;
    const T* xp = x + plane * s.h * s.w;  // (h, w)
    const T* wc = w + c * s.kh * s.kw;    // (kh, kw)
    T* yp = y + plane * oh * ow;          // (out_h, out_w)
    const T b = bias ? bias[c] : T(0);
    for (std::int64_t i = 0; i < oh; ++i) {
      T* yrow = yp + i * ow;
      std::fill(yrow, yrow + ow, b);
      for (std::int64_t r = 0; r < s.kh; ++r) {
        const std::int64_t ih = i * s.stride_h - s.pad_h + r * s.dilation_h;
        if (ih < 0 || ih >= s.h) continue;
        const T* xrow = xp + ih * s.w;
        for (std::int64_t q = 0; q < s.kw; ++q) {
          const TapRange jr = tap_range(ow, s.w, s.stride_w, s.pad_w, q * s.dilation_w);
          const std::int64_t shift = q * s.dilation_w - s.pad_w;
          const T wv = wc[r * s.kw + q];
          if (s.stride_w == 1) {
#pragma omp simd
            for (std::int64_t j = jr.lo; j < jr.hi; ++j) yrow[j] += wv * xrow[j + shift];
          } else {
            for (std::int64_t j = jr.lo; j < jr.hi; ++j) yrow[j] += wv * xrow[j * s.stride_w + shift];
          }
        }
      }
    }
  }
}

template <class T>
void backward_input_depthwise(const Conv2dShape& s, const T* w, const T* dy, T* dx) {
  const std::int64_t oh = s.out_h(), ow = s.out_w(), planes = s.n * s.c_in;
#pragma omp parallel for schedule(static) if (planes > 1 && planes * oh * ow * s.kh * s.kw > kParallelGrain)
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    const std::int64_t c = plane % s.c_in;
    const T* dyp = dy + plane * oh * ow;  // (out_h, out_w)
    const T* wc = w + c * s.kh * s.kw;    // (kh, kw)
    T* dxp = dx + plane * s.h * s.w;      // (h, w)
    std::fill(dxp, dxp + s.h * s.w, T(0));
    for (std::int64_t i = 0; i < oh; ++i) {
      const T* dyrow = dyp + i * ow;
      for (std::int64_t r = 0; r < s.kh; ++r) {
        const std::int64_t ih = i * s.stride_h - s.pad_h + r * s.dilation_h;
        if (ih < 0 || ih >= s.h) continue;
        T* dxrow = dxp + ih * s.w;
        for (std::int64_t q = 0; q < s.kw; ++q) {
          const TapRange jr = tap_range(ow, s.w, s.stride_w, s.pad_w, q * s.dilation_w);
          const std::int64_t shift = q * s.dilation_w - s.pad_w;
          const T wv = wc[r * s.kw + q];
          if (s.stride_w == 1) {
#pragma omp simd
            for (std::int64_t j = jr.lo; j < jr.hi; ++j) dxrow[j + shift] += wv * dyrow[j];
          } else {
            for (std::int64_t j = jr.lo; j < jr.hi; ++j) dxrow[j * s.stride_w + shift] += wv * dyrow[j];
          }
        }
      }
    }
  }
}

// One thread owns each channel and sums its images in order: deterministic on any thread
// count. Row dot products in T, their total per tap in double.
template <class T>
void backward_weight_depthwise(const Conv2dShape& s, const T* x, const T* dy, T* dw) {
  const std::int64_t oh = s.out_h(), ow = s.out_w(), taps = s.kh * s.kw;
#pragma omp parallel for schedule(static) if (s.c_in > 1 && s.n * s.c_in * oh * ow * taps > kParallelGrain)
  for (std::int64_t c = 0; c < s.c_in; ++c) {
    std::vector<double> acc(static_cast<std::size_t>(taps), 0.0);  // (kh, kw); taps are few
    for (std::int64_t n = 0; n < s.n; ++n) {
      const T* xp = x + (n * s.c_in + c) * s.h * s.w;
      const T* dyp = dy + (n * s.c_in + c) * oh * ow;
      for (std::int64_t i = 0; i < oh; ++i) {
        const T* dyrow = dyp + i * ow;
        for (std::int64_t r = 0; r < s.kh; ++r) {
          const std::int64_t ih = i * s.stride_h - s.pad_h + r * s.dilation_h;
          if (ih < 0 || ih >= s.h) continue;
          const T* xrow = xp + ih * s.w;
          for (std::int64_t q = 0; q < s.kw; ++q) {
            const TapRange jr = tap_range(ow, s.w, s.stride_w, s.pad_w, q * s.dilation_w);
            const std::int64_t shift = q * s.dilation_w - s.pad_w;
            T dot = 0;
            if (s.stride_w == 1) {
#pragma omp simd reduction(+ : dot)
              for (std::int64_t j = jr.lo; j < jr.hi; ++j) dot += dyrow[j] * xrow[j + shift];
            } else {
              for (std::int64_t j = jr.lo; j < jr.hi; ++j) dot += dyrow[j] * xrow[j * s.stride_w + shift];
            }
            acc[static_cast<std::size_t>(r * s.kw + q)] += static_cast<double>(dot);
          }
        }
      }
    }
    for (std::int64_t t = 0; t < taps; ++t) dw[c * taps + t] = static_cast<T>(acc[static_cast<std::size_t>(t)]);
  }
}

}  // namespace

void CpuBackend::conv2d(DType t, const Conv2dShape& s, const void* x, const void* weight,
                        const void* bias, void* y) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const auto* xs = static_cast<const T*>(x);
    const auto* ws = static_cast<const T*>(weight);
    const auto* bs = static_cast<const T*>(bias);
    if (is_depthwise(s)) forward_depthwise(s, xs, ws, bs, static_cast<T*>(y));
    else forward_gemm(s, xs, ws, bs, static_cast<T*>(y));
  }, "conv2d");
}

void CpuBackend::conv2d_backward_input(DType t, const Conv2dShape& s, const void* weight,
                                       const void* dy, void* dx) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const auto* ws = static_cast<const T*>(weight);
    const auto* dys = static_cast<const T*>(dy);
    if (is_depthwise(s)) backward_input_depthwise(s, ws, dys, static_cast<T*>(dx));
    else backward_input_gemm(s, ws, dys, static_cast<T*>(dx));
  }, "conv2d_backward_input");
}

void CpuBackend::conv2d_backward_weight(DType t, const Conv2dShape& s, const void* x,
                                        const void* dy, void* dweight) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const auto* xs = static_cast<const T*>(x);
    const auto* dys = static_cast<const T*>(dy);
    if (is_depthwise(s)) backward_weight_depthwise(s, xs, dys, static_cast<T*>(dweight));
    else backward_weight_gemm(s, xs, dys, static_cast<T*>(dweight));
  }, "conv2d_backward_weight");
}

}  // namespace shrink::kernels::cpu
