// Packed-operand convolutions (kernels/cpu/conv_packed.h).
#include "kernels/cpu/conv_packed.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/gemm_detail.h"
#include "kernels/cpu/im2col.h"

namespace shrink::kernels::cpu {
namespace {

using namespace gemm_detail;

// Output pixels per work item: 8 B panels, a kKC x 128 slice (128 KiB) that stays in L2 while
// every row panel of W passes over it.
constexpr std::int64_t kConvChunk = 8 * kNR;
constexpr std::int64_t kConvParallelWork = 64 * 64 * 64;  // multiply-adds worth a fork

constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

thread_local AlignedBuffer t_pack_w;    // W_g as A panels, every k block (calling thread)
thread_local AlignedBuffer t_pack_col;  // one item's B panels (each worker thread)
thread_local AlignedBuffer t_col_row;   // one row of col over an item's pixels

// Precomputed per call: the in-image output columns of each kernel column q.
struct Taps {
  std::vector<TapRange> cols;
  explicit Taps(const Conv2dShape& s) {
    for (std::int64_t q = 0; q < s.kw; ++q)
      cols.push_back(tap_range(s.out_w(), s.w, s.stride_w, s.pad_w, q * s.dilation_w));
  }
};

// row[0, nc) = row k = (c, r, q) of im2col(x_g) over output pixels [j0, j0 + nc) of one image.
void col_row(const Conv2dShape& s, const Taps& taps, const float* x_g, std::int64_t k,
             std::int64_t j0, std::int64_t nc, float* row) {
  const std::int64_t ow = s.out_w();
  const std::int64_t c = k / (s.kh * s.kw), r = (k / s.kw) % s.kh, q = k % s.kw;
  const float* plane = x_g + c * s.h * s.w;
  const TapRange jr = taps.cols[static_cast<std::size_t>(q)];
  const std::int64_t shift = q * s.dilation_w - s.pad_w;
  for (std::int64_t j = j0; j < j0 + nc;) {
    const std::int64_t i = j / ow, a = j - i * ow;           // output row i, from column a
    const std::int64_t b = std::min(ow, a + (j0 + nc - j));  // to column b (exclusive)
    float* out = row + (j - j0);                              // out[t - a] for column t
    const std::int64_t ih = i * s.stride_h - s.pad_h + r * s.dilation_h;
    if (ih < 0 || ih >= s.h) {
      std::fill(out, out + (b - a), 0.0f);
    } else {
      const float* in = plane + ih * s.w;  // indexed t * stride + shift >= 0 inside jr
      const std::int64_t lo = std::clamp(jr.lo, a, b), hi = std::clamp(jr.hi, lo, b);
      std::fill(out, out + (lo - a), 0.0f);
      if (s.stride_w == 1) {
#pragma omp simd
        for (std::int64_t t = lo; t < hi; ++t) out[t - a] = in[t + shift];
      } else {
        for (std::int64_t t = lo; t < hi; ++t) out[t - a] = in[t * s.stride_w + shift];
      }
      std::fill(out + (hi - a), out + (b - a), 0.0f);
    }
    j += b - a;
  }
}

// k rows [p0, p0 + kc) of im2col(x_g) over pixels [j0, j0 + nc) as ceil(nc / kNR) B panels
// (dst[panel kc kNR + kk kNR + jj]); pixels past nc are zero.
void pack_col(const Conv2dShape& s, const Taps& taps, const float* x_g, std::int64_t j0,
              std::int64_t nc, std::int64_t p0, std::int64_t kc, float* row, float* dst) {
  const std::int64_t panels = ceil_div(nc, kNR);
  std::fill(row + nc, row + panels * kNR, 0.0f);
  for (std::int64_t kk = 0; kk < kc; ++kk) {
    col_row(s, taps, x_g, p0 + kk, j0, nc, row);
    for (std::int64_t jp = 0; jp < panels; ++jp) {
      float* d = dst + jp * kc * kNR + kk * kNR;
      _mm256_store_ps(d, _mm256_loadu_ps(row + jp * kNR));
      _mm256_store_ps(d + 8, _mm256_loadu_ps(row + jp * kNR + 8));
    }
  }
}

// W_g (cog, K) as A panels, k block by k block: block p0 starts at p0 * m_pad, its row panel
// ip at ip * kc.
void pack_weight(const float* w_g, std::int64_t cog, std::int64_t k, std::int64_t m_pad, float* dst) {
  for (std::int64_t p0 = 0; p0 < k; p0 += kKC) {
    const std::int64_t kc = std::min(kKC, k - p0);
    for (std::int64_t ip = 0; ip < cog; ip += kMR)
      pack_panel_a(w_g + ip * k + p0, k, true, std::min(kMR, cog - ip), kc, 1.0f, dst + p0 * m_pad + ip * kc);
  }
}

}  // namespace

void conv2d_forward_packed(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                           float* y) {
  const std::int64_t cig = s.c_in / s.groups, cog = s.c_out / s.groups;
  const std::int64_t k = cig * s.kh * s.kw, p = s.out_h() * s.out_w(), hw = s.h * s.w;
  const std::int64_t x_image = s.c_in * hw, y_image = s.c_out * p;
  const std::int64_t m_pad = ceil_div(cog, kMR) * kMR;
  const std::int64_t chunks = ceil_div(p, kConvChunk), items = s.n * chunks;
  const Taps taps(s);
  float* const wpack = t_pack_w.get(m_pad * k);
  const bool parallel = !omp_in_parallel() && items > 1 && s.n * cog * p * k > kConvParallelWork;
  for (std::int64_t g = 0; g < s.groups; ++g) {
    pack_weight(w + g * cog * k, cog, k, m_pad, wpack);
    const float* b_g = bias ? bias + g * cog : nullptr;
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t item = 0; item < items; ++item) {
      const std::int64_t img = item / chunks, j0 = item % chunks * kConvChunk;
      const std::int64_t nc = std::min(kConvChunk, p - j0), panels = ceil_div(nc, kNR);
      const float* x_g = x + img * x_image + g * cig * hw;
      float* y_g = y + img * y_image + g * cog * p + j0;  // column j0 of (cog, P)
      float* colpack = t_pack_col.get(std::min(kKC, k) * panels * kNR);
      float* row = t_col_row.get(panels * kNR);
      for (std::int64_t p0 = 0; p0 < k; p0 += kKC) {
        const std::int64_t kc = std::min(kKC, k - p0);
        pack_col(s, taps, x_g, j0, nc, p0, kc, row, colpack);
        const float beta = p0 == 0 ? 0.0f : 1.0f;  // later k blocks accumulate, as in sgemm
        for (std::int64_t ic = 0; ic < cog; ic += kMC) {
          const std::int64_t mc = std::min(kMC, cog - ic);
          for (std::int64_t jp = 0; jp < panels; ++jp)
            for (std::int64_t ip = ic; ip < ic + mc; ip += kMR)
              multiply_panels(kc, wpack + p0 * m_pad + ip * kc, colpack + jp * kc * kNR,
                              y_g + ip * p + jp * kNR, p, std::min(kMR, cog - ip),
                              std::min(kNR, nc - jp * kNR), beta);
        }
      }
      if (b_g)
        for (std::int64_t o = 0; o < cog; ++o) {
          float* yo = y_g + o * p;
          const float add = b_g[o];
#pragma omp simd
          for (std::int64_t j = 0; j < nc; ++j) yo[j] += add;
        }
    }
  }
}

void conv2d_backward_weight_packed(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const std::int64_t cig = s.c_in / s.groups, cog = s.c_out / s.groups;
  const std::int64_t k = cig * s.kh * s.kw, p = s.out_h() * s.out_w(), hw = s.h * s.w;
  const std::int64_t x_image = s.c_in * hw, y_image = s.c_out * p;
  const std::int64_t total = s.n * p, panels = ceil_div(k, kNR), m_pad = ceil_div(cog, kMR) * kMR;
  if (total == 0) {
    std::fill(dw, dw + s.c_out * k, 0.0f);
    return;
  }
  const Taps taps(s);
  const bool parallel = !omp_in_parallel() && panels > 1 && s.n * cog * p * k > kConvParallelWork;
#pragma omp parallel if (parallel)
  {
    // Fixed panels per thread: every element of dW has one owner, which sums the pixels of
    // all images in one order whatever the thread count.
    const std::int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
    const std::int64_t jp0 = panels * t / threads, jp1 = panels * (t + 1) / threads;
    float* apack = t_pack_w.get(m_pad * kKC);
    float* bpanel = t_pack_col.get(kKC * kNR);
    float* rows = t_col_row.get(kNR * kKC);  // up to kNR rows of col over one pixel block
    for (std::int64_t g = 0; g < s.groups && jp0 < jp1; ++g) {
      float* dw_g = dw + g * cog * k;
      // k runs over the pixels of all images in order, kKC at a time; a block may span images.
      for (std::int64_t q0 = 0; q0 < total; q0 += kKC) {
        const std::int64_t kc = std::min(kKC, total - q0);
        // Calls f(image, first pixel in the image, pixels, offset in the block) per image.
        auto for_segments = [&](auto&& f) {
          for (std::int64_t q = q0; q < q0 + kc;) {
            const std::int64_t img = q / p, j = q - img * p, len = std::min(p - j, q0 + kc - q);
            f(img, j, len, q - q0);
            q += len;
          }
        };
        for (std::int64_t ip = 0; ip < cog; ip += kMR)  // dy_g as A panels
          for_segments([&](std::int64_t img, std::int64_t j, std::int64_t len, std::int64_t off) {
            pack_panel_a(dy + img * y_image + (g * cog + ip) * p + j, p, true, std::min(kMR, cog - ip),
                         len, 1.0f, apack + ip * kc + off * kMR);
          });
        const float beta = q0 == 0 ? 0.0f : 1.0f;
        for (std::int64_t jp = jp0; jp < jp1; ++jp) {
          const std::int64_t valid = std::min(kNR, k - jp * kNR);
          for (std::int64_t jj = 0; jj < valid; ++jj)  // rows jp kNR + jj of col, pixels q0..
            for_segments([&](std::int64_t img, std::int64_t j, std::int64_t len, std::int64_t off) {
              col_row(s, taps, x + img * x_image + g * cig * hw, jp * kNR + jj, j, len, rows + jj * kc + off);
            });
          pack_panel_b(rows, kc, true, valid, kc, bpanel);
          for (std::int64_t ip = 0; ip < cog; ip += kMR)
            multiply_panels(kc, apack + ip * kc, bpanel, dw_g + ip * k + jp * kNR, k,
                            std::min(kMR, cog - ip), valid, beta);
        }
      }
    }
  }
}

bool backward_input_is_forward(const Conv2dShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.pad_h <= s.dilation_h * (s.kh - 1) &&
         s.pad_w <= s.dilation_w * (s.kw - 1);
}

void conv2d_backward_input_as_forward(const Conv2dShape& s, const float* w, const float* dy,
                                      float* dx) {
  const std::int64_t cig = s.c_in / s.groups, cog = s.c_out / s.groups, taps = s.kh * s.kw;
  thread_local std::vector<float> flipped;
  flipped.resize(static_cast<std::size_t>(s.c_in * cog * taps));
  for (std::int64_t g = 0; g < s.groups; ++g)
    for (std::int64_t ci = 0; ci < cig; ++ci)
      for (std::int64_t co = 0; co < cog; ++co)
        for (std::int64_t t = 0; t < taps; ++t)  // tap t = (r, q) meets flipped tap taps-1-t
          flipped[static_cast<std::size_t>(((g * cig + ci) * cog + co) * taps + (taps - 1 - t))] =
              w[((g * cog + co) * cig + ci) * taps + t];
  Conv2dShape t = s;
  t.c_in = s.c_out;
  t.c_out = s.c_in;
  t.h = s.out_h();
  t.w = s.out_w();
  t.pad_h = s.dilation_h * (s.kh - 1) - s.pad_h;
  t.pad_w = s.dilation_w * (s.kw - 1) - s.pad_w;
  if (forward_is_direct(t)) conv2d_forward_direct(t, dy, flipped.data(), nullptr, dx);
  else conv2d_forward_packed(t, dy, flipped.data(), nullptr, dx);
}

}  // namespace shrink::kernels::cpu
