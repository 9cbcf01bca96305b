// im2col / col2im (kernels/cpu/im2col.h). The inner loops run over output columns inside the
// range where the tap is in the image (tap_range), so they carry no bounds test and vectorise
// when the stride is 1; the padding columns are written as zeros around them.
#include "kernels/cpu/im2col.h"

#include <algorithm>

#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels::cpu {

template <class T>
void im2col(const Conv2dShape& s, std::int64_t cig, const T* x, std::int64_t image_stride,
            std::int64_t images, T* col, std::int64_t ld, bool threaded) {
  const std::int64_t oh = s.out_h(), ow = s.out_w(), taps = s.kh * s.kw, planes = images * cig;
  const bool parallel = threaded && planes > 1 && planes * taps * oh * ow > kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t bc = 0; bc < planes; ++bc) {
    const std::int64_t b = bc / cig, c = bc % cig;
    const T* plane = x + b * image_stride + c * s.h * s.w;  // (h, w)
    for (std::int64_t r = 0; r < s.kh; ++r)
      for (std::int64_t q = 0; q < s.kw; ++q) {
        T* row = col + ((c * s.kh + r) * s.kw + q) * ld + b * oh * ow;  // (out_h, out_w)
        const TapRange jr = tap_range(ow, s.w, s.stride_w, s.pad_w, q * s.dilation_w);
        const std::int64_t shift = q * s.dilation_w - s.pad_w;
        for (std::int64_t i = 0; i < oh; ++i) {
          T* out = row + i * ow;
          const std::int64_t ih = i * s.stride_h - s.pad_h + r * s.dilation_h;
          if (ih < 0 || ih >= s.h || jr.lo >= jr.hi) {
            std::fill(out, out + ow, T(0));
            continue;
          }
          const T* in = plane + ih * s.w;  // indexed j * stride + shift >= 0 inside jr
          std::fill(out, out + jr.lo, T(0));
          if (s.stride_w == 1) {
#pragma omp simd
            for (std::int64_t j = jr.lo; j < jr.hi; ++j) out[j] = in[j + shift];
          } else {
            for (std::int64_t j = jr.lo; j < jr.hi; ++j) out[j] = in[j * s.stride_w + shift];
          }
          std::fill(out + jr.hi, out + ow, T(0));
        }
      }
  }
}

template <class T>
void col2im_add(const Conv2dShape& s, std::int64_t cig, const T* col, std::int64_t ld,
                std::int64_t images, T* dx, std::int64_t image_stride, bool threaded) {
  const std::int64_t oh = s.out_h(), ow = s.out_w(), taps = s.kh * s.kw, planes = images * cig;
  const bool parallel = threaded && planes > 1 && planes * taps * oh * ow > kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t bc = 0; bc < planes; ++bc) {
    const std::int64_t b = bc / cig, c = bc % cig;
    T* plane = dx + b * image_stride + c * s.h * s.w;  // (h, w)
    // Fixed (r, q, i, j) order per channel: the sum is the same on any thread count.
    for (std::int64_t r = 0; r < s.kh; ++r)
      for (std::int64_t q = 0; q < s.kw; ++q) {
        const T* row = col + ((c * s.kh + r) * s.kw + q) * ld + b * oh * ow;
        const TapRange jr = tap_range(ow, s.w, s.stride_w, s.pad_w, q * s.dilation_w);
        const std::int64_t shift = q * s.dilation_w - s.pad_w;
        for (std::int64_t i = 0; i < oh; ++i) {
          const std::int64_t ih = i * s.stride_h - s.pad_h + r * s.dilation_h;
          if (ih < 0 || ih >= s.h) continue;
          const T* in = row + i * ow;
          T* out = plane + ih * s.w;  // indexed j * stride + shift >= 0 inside jr
          if (s.stride_w == 1) {
            // Distinct j write distinct pixels: no dependence between iterations.
#pragma omp simd
            for (std::int64_t j = jr.lo; j < jr.hi; ++j) out[j + shift] += in[j];
          } else {
            for (std::int64_t j = jr.lo; j < jr.hi; ++j) out[j * s.stride_w + shift] += in[j];
          }
        }
      }
  }
}

template void im2col<float>(const Conv2dShape&, std::int64_t, const float*, std::int64_t,
                            std::int64_t, float*, std::int64_t, bool);
template void im2col<double>(const Conv2dShape&, std::int64_t, const double*, std::int64_t,
                             std::int64_t, double*, std::int64_t, bool);
template void col2im_add<float>(const Conv2dShape&, std::int64_t, const float*, std::int64_t,
                                std::int64_t, float*, std::int64_t, bool);
template void col2im_add<double>(const Conv2dShape&, std::int64_t, const double*, std::int64_t,
                                 std::int64_t, double*, std::int64_t, bool);

}  // namespace shrink::kernels::cpu
