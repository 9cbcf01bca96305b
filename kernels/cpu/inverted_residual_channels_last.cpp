// MobileNetV2 inverted residual blocks, channels-last, one image at a time
// (kernels/cpu/inverted_residual_channels_last.h).
#include "kernels/cpu/inverted_residual_channels_last.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/simd_transpose.h"
#include "kernels/cpu/tiling.h"

namespace shrink::kernels::cpu {
namespace {

constexpr std::int64_t kVec = 8;      // channels a vector
constexpr std::int64_t kVecs = 3;     // output vectors a 1x1 tile at most (kTileRows)
constexpr std::int64_t kTaps = 9;     // 3x3

thread_local AlignedBuffer t_packed;  // every block's weights, packed (calling thread)
thread_local AlignedBuffer t_maps;    // one image's maps (each worker)

// A block's sizes, and where its packed weights sit in the packed buffer (floats from its start).
struct Packed {
  std::int64_t c_in, hidden, c_out;        // channels
  std::int64_t cs, hs, os;                 // floats a pixel: c_in, hidden, c_out rounded up to vectors
  std::int64_t h, w, oh, ow, stride;
  bool has_expand, residual;
  std::int64_t expand, expand_bias;        // [c_in][hs], [hs]
  std::int64_t depthwise, depthwise_bias;  // [9][hs], [hs]
  std::int64_t project, project_bias;      // [hidden][os], [os]
};

// The packed layout of every block, and the floats it takes.
std::int64_t plan(std::int64_t blocks, const InvertedResidualBlock* b, std::vector<Packed>& out) {
  std::int64_t at = 0;
  const auto take = [&](std::int64_t floats) { return std::exchange(at, at + floats); };
  for (std::int64_t i = 0; i < blocks; ++i) {
    const Conv2dShape& d = b[i].depthwise;
    Packed p{};
    p.hidden = d.c_in;
    p.c_in = b[i].has_expand ? b[i].expand.c_in : d.c_in;
    p.c_out = b[i].project.c_out;
    p.cs = round_up(p.c_in, kVec);
    p.hs = round_up(p.hidden, kVec);
    p.os = round_up(p.c_out, kVec);
    p.h = d.h;
    p.w = d.w;
    p.oh = d.out_h();
    p.ow = d.out_w();
    p.stride = d.stride_h;
    p.has_expand = b[i].has_expand;
    p.residual = b[i].residual;
    p.expand = take(p.has_expand ? p.c_in * p.hs : 0);
    p.expand_bias = take(p.hs);
    p.depthwise = take(kTaps * p.hs);
    p.depthwise_bias = take(p.hs);
    p.project = take(p.hidden * p.os);
    p.project_bias = take(p.os);
    out.push_back(p);
  }
  return at;
}

// out[k][o] = w[o][k] for w (rows, cols) row-major, out `stride` floats a row (zero past rows).
void transpose_into(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t stride, float* out) {
  for (std::int64_t k = 0; k < cols; ++k) {
    std::fill_n(out + k * stride, stride, 0.0f);
    for (std::int64_t o = 0; o < rows; ++o) out[k * stride + o] = w[o * cols + k];
  }
}

void copy_bias(const void* bias, std::int64_t n, std::int64_t padded, float* out) {
  std::fill_n(out, padded, 0.0f);
  if (bias) std::copy_n(static_cast<const float*>(bias), n, out);
}

void pack(const InvertedResidualBlock& b, const Packed& p, float* base) {
  if (p.has_expand) transpose_into(static_cast<const float*>(b.expand_weight), p.hidden, p.c_in, p.hs, base + p.expand);
  copy_bias(p.has_expand ? b.expand_bias : nullptr, p.hidden, p.hs, base + p.expand_bias);
  transpose_into(static_cast<const float*>(b.depthwise_weight), p.hidden, kTaps, p.hs, base + p.depthwise);
  copy_bias(b.depthwise_bias, p.hidden, p.hs, base + p.depthwise_bias);
  transpose_into(static_cast<const float*>(b.project_weight), p.c_out, p.hidden, p.os, base + p.project);
  copy_bias(b.project_bias, p.c_out, p.os, base + p.project_bias);
}

inline __m256 relu6(__m256 v) { return _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), _mm256_set1_ps(6.0f)); }

// R pixels x V vectors of a 1x1 convolution: out[r][v] = act(bias[v] + sum_k in[r][k] w[k][v])
// (+ res[r][v]), k in order. Rows of in, out and res are in_s, out_s and res_s floats apart.
template <int R, int V>
void pointwise_tile(const float* in, std::int64_t in_s, std::int64_t k_count, const float* w, std::int64_t w_s,
                    const float* bias, bool act, const float* res, std::int64_t res_s, float* out,
                    std::int64_t out_s) {
  __m256 acc[R][V];
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) {
    const __m256 b = _mm256_load_ps(bias + v * kVec);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][v] = b;
  }
  for (std::int64_t k = 0; k < k_count; ++k) {
    __m256 wk[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) wk[v] = _mm256_load_ps(w + k * w_s + v * kVec);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(in + r * in_s + k);
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(a, wk[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      __m256 y = acc[r][v];
      if (res) y = _mm256_add_ps(y, _mm256_load_ps(res + r * res_s + v * kVec));
      if (act) y = relu6(y);
      _mm256_store_ps(out + r * out_s + v * kVec, y);
    }
}

// Pixels a tile for V output vectors: enough independent accumulators (R x V >= 8) to cover the
// FMA latency, and R x V + V + 1 <= 16 registers.
template <int V>
constexpr int kTileRows = V == 1 ? 8 : V == 2 ? 6 : 4;

template <int V>
void pointwise_column(const float* in, std::int64_t in_s, std::int64_t rows, std::int64_t k_count, const float* w,
                      std::int64_t w_s, const float* bias, bool act, const float* res, std::int64_t res_s,
                      float* out, std::int64_t out_s) {
  constexpr int R = kTileRows<V>;
  std::int64_t r = 0;
  for (; r + R <= rows; r += R)
    pointwise_tile<R, V>(in + r * in_s, in_s, k_count, w, w_s, bias, act, res ? res + r * res_s : nullptr, res_s,
                         out + r * out_s, out_s);
  for (; r < rows; ++r)
    pointwise_tile<1, V>(in + r * in_s, in_s, k_count, w, w_s, bias, act, res ? res + r * res_s : nullptr, res_s,
                         out + r * out_s, out_s);
}

// A 1x1 convolution over `rows` pixels: out (rows x n_s) = act(bias + in (rows x k) w (k x n_s))
// (+ res), n_s a multiple of 8 (w's and bias's padding lanes zero).
void pointwise(const float* in, std::int64_t in_s, std::int64_t rows, std::int64_t k_count, const float* w,
               std::int64_t n_s, const float* bias, bool act, const float* res, std::int64_t res_s, float* out,
               std::int64_t out_s) {
  for (std::int64_t c = 0; c < n_s; c += kVecs * kVec) {
    const std::int64_t vecs = std::min(kVecs, (n_s - c) / kVec);
    const float* r = res ? res + c : nullptr;
    if (vecs == 3) pointwise_column<3>(in, in_s, rows, k_count, w + c, n_s, bias + c, act, r, res_s, out + c, out_s);
    else if (vecs == 2) pointwise_column<2>(in, in_s, rows, k_count, w + c, n_s, bias + c, act, r, res_s, out + c, out_s);
    else pointwise_column<1>(in, in_s, rows, k_count, w + c, n_s, bias + c, act, r, res_s, out + c, out_s);
  }
}

// d (oh x ow x hs) = relu6(bias + 3x3 depthwise of e), e the zero-bordered (h + 2) x (w + 2) map
// (pixel (i, j) of e at row i + 1, column j + 1), taps in order (row by row) as the conv2d kernels.
// P output pixels at once (in row-major order, across rows), so that P independent sums cover the
// FMA latency; each tap's weights are loaded once for the P pixels. at[q]: where output pixel q's
// window starts in e.
template <int P>
void depthwise_pixels(const float* e, const std::int64_t* at, std::int64_t hs,
                      std::int64_t row_floats, const float* w, const float* bias, float* d) {
  for (std::int64_t c = 0; c < hs; c += kVec) {
    __m256 acc[P];
    const __m256 b = _mm256_load_ps(bias + c);
#pragma GCC unroll 8
    for (int q = 0; q < P; ++q) acc[q] = b;
    for (int kr = 0; kr < 3; ++kr)
      for (int kc = 0; kc < 3; ++kc) {
        const __m256 wt = _mm256_load_ps(w + (kr * 3 + kc) * hs + c);
        const float* tap = e + kr * row_floats + kc * hs + c;
#pragma GCC unroll 8
        for (int q = 0; q < P; ++q)
          acc[q] = _mm256_fmadd_ps(_mm256_load_ps(tap + at[q]), wt, acc[q]);
      }
#pragma GCC unroll 8
    for (int q = 0; q < P; ++q)
      _mm256_store_ps(d + q * hs + c, relu6(acc[q]));
  }
}

// P consecutive output pixels of one row at stride S, `e` at the first one's window: each input
// vector of a tap row is loaded once and feeds every output of the run that reads it (up to three
// at stride 1). Per output the taps still go in order (row by row, column by column within a row),
// so the sums are depthwise_pixels' bit for bit. (depthwise_pixels loads every tap of every pixel
// on its own and keeps the P window offsets in memory: GCC reloaded one before every load, and the
// loads, not the FMAs, set its pace: 37% of a pruned MobileNetV2 batch on one thread.)
template <int P, int S>
void depthwise_row_run(const float* e, std::int64_t hs, std::int64_t row_floats, const float* w, const float* bias,
                       float* d) {
  constexpr int kColumns = S * (P - 1) + 3;  // input columns the run's windows cover
  for (std::int64_t c = 0; c < hs; c += kVec) {
    __m256 acc[P];
    const __m256 b = _mm256_load_ps(bias + c);
#pragma GCC unroll 8
    for (int q = 0; q < P; ++q) acc[q] = b;
    for (int kr = 0; kr < 3; ++kr) {
      const float* in = e + kr * row_floats + c;
      const __m256 wt[3] = {_mm256_load_ps(w + (kr * 3) * hs + c), _mm256_load_ps(w + (kr * 3 + 1) * hs + c),
                            _mm256_load_ps(w + (kr * 3 + 2) * hs + c)};
#pragma GCC unroll 17
      for (int j = 0; j < kColumns; ++j) {
        const __m256 v = _mm256_load_ps(in);
        in += hs;
        // `in` stays a running pointer: otherwise GCC hoists all 3 x kColumns column addresses
        // out of the channel loop, more pointers than registers, and reloads one before every load.
        asm("" : "+r"(in));
#pragma GCC unroll 3
        for (int kc = 0; kc < 3; ++kc)  // column j is tap kc of output (j - kc) / S
          if (j >= kc && (j - kc) % S == 0 && (j - kc) / S < P)
            acc[(j - kc) / S] = _mm256_fmadd_ps(v, wt[kc], acc[(j - kc) / S]);
      }
    }
#pragma GCC unroll 8
    for (int q = 0; q < P; ++q) _mm256_store_ps(d + q * hs + c, relu6(acc[q]));
  }
}

template <int S>
void depthwise_rows(const Packed& p, const std::int64_t* at, const float* e, const float* w, const float* bias,
                    float* d) {
  constexpr int kPixels = 8;
  const std::int64_t row_floats = (p.w + 2) * p.hs;
  for (std::int64_t i = 0; i < p.oh; ++i) {  // runs of 8 within each row, the rest one by one
    std::int64_t q = i * p.ow;
    for (; q + kPixels <= (i + 1) * p.ow; q += kPixels)
      depthwise_row_run<kPixels, S>(e + at[q], p.hs, row_floats, w, bias, d + q * p.hs);
    for (; q < (i + 1) * p.ow; ++q) depthwise_pixels<1>(e, at + q, p.hs, row_floats, w, bias, d + q * p.hs);
  }
}

void depthwise(const Packed& p, const std::int64_t* at, const float* e, const float* w, const float* bias, float* d) {
  constexpr int kPixels = 8;
  if (p.ow >= kPixels) return p.stride == 1 ? depthwise_rows<1>(p, at, e, w, bias, d)
                                            : depthwise_rows<2>(p, at, e, w, bias, d);
  // Rows narrower than a run (4x4 maps): 8 pixels across rows, each window on its own.
  const std::int64_t pixels = p.oh * p.ow, row_floats = (p.w + 2) * p.hs;
  std::int64_t q = 0;
  for (; q + kPixels <= pixels; q += kPixels)
    depthwise_pixels<kPixels>(e, at + q, p.hs, row_floats, w, bias, d + q * p.hs);
  for (; q < pixels; ++q) depthwise_pixels<1>(e, at + q, p.hs, row_floats, w, bias, d + q * p.hs);
}

// Where each output pixel's 3x3 window starts in the zero-bordered map (depthwise's `at`).
std::vector<std::int64_t> window_starts(const Packed& p) {
  std::vector<std::int64_t> at;
  for (std::int64_t i = 0; i < p.oh; ++i)
    for (std::int64_t j = 0; j < p.ow; ++j) at.push_back((i * p.stride * (p.w + 2) + j * p.stride) * p.hs);
  return at;
}

// Planes x (c, hw) into channels-last out (hw x cs), the padding lanes zero: 8 pixels x 8
// channels at a time through a register transpose.
void to_channels_last(const float* x, std::int64_t c, std::int64_t hw, std::int64_t cs, float* out) {
  std::int64_t p = 0;
  for (; p + kVec <= hw; p += kVec)
    for (std::int64_t c0 = 0; c0 < cs; c0 += kVec) {
      __m256 r[kVec];
      for (std::int64_t i = 0; i < kVec; ++i)
        r[i] = c0 + i < c ? _mm256_loadu_ps(x + (c0 + i) * hw + p) : _mm256_setzero_ps();
      transpose8(r);
      for (std::int64_t i = 0; i < kVec; ++i) _mm256_store_ps(out + (p + i) * cs + c0, r[i]);
    }
  for (; p < hw; ++p)
    for (std::int64_t i = 0; i < cs; ++i) out[p * cs + i] = i < c ? x[i * hw + p] : 0.0f;
}

// Channels-last in (hw x cs) back to planes y (c, hw).
void to_planes(const float* in, std::int64_t c, std::int64_t hw, std::int64_t cs, float* y) {
  std::int64_t p = 0;
  for (; p + kVec <= hw; p += kVec)
    for (std::int64_t c0 = 0; c0 < c; c0 += kVec) {
      __m256 r[kVec];
      for (std::int64_t i = 0; i < kVec; ++i) r[i] = _mm256_load_ps(in + (p + i) * cs + c0);
      transpose8(r);  // r[i]: channel c0 + i of pixels p..p+7
      for (std::int64_t i = 0; i < kVec && c0 + i < c; ++i) _mm256_storeu_ps(y + (c0 + i) * hw + p, r[i]);
    }
  for (; p < hw; ++p)
    for (std::int64_t i = 0; i < c; ++i) y[i * hw + p] = in[p * cs + i];
}

// One block on one image: x (h w x cs) -> y (oh ow x os); e and d scratch.
void run_block(const Packed& p, const float* packed, const std::int64_t* windows, const float* x, float* e, float* d,
               float* y) {
  const std::int64_t wp = p.w + 2, hs = p.hs;
  // The depthwise convolution's zero padding: the border of e.
  std::fill_n(e, wp * hs, 0.0f);
  std::fill_n(e + (p.h + 1) * wp * hs, wp * hs, 0.0f);
  for (std::int64_t i = 0; i < p.h; ++i) {
    float* row = e + (i + 1) * wp * hs;
    std::fill_n(row, hs, 0.0f);
    std::fill_n(row + (p.w + 1) * hs, hs, 0.0f);
    const float* in = x + i * p.w * p.cs;
    if (p.has_expand)
      pointwise(in, p.cs, p.w, p.c_in, packed + p.expand, hs, packed + p.expand_bias, true, nullptr, 0, row + hs, hs);
    else
      std::copy_n(in, p.w * hs, row + hs);  // c_in == hidden
  }
  depthwise(p, windows, e, packed + p.depthwise, packed + p.depthwise_bias, d);
  pointwise(d, hs, p.oh * p.ow, p.hidden, packed + p.project, p.os, packed + p.project_bias, false,
            p.residual ? x : nullptr, p.cs, y, p.os);
}

}  // namespace

bool inverted_residual_fuses(const InvertedResidualBlock& b) {
  const auto pointwise_shape = [](const Conv2dShape& s) {
    return s.kh == 1 && s.kw == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0 &&
           s.groups == 1;
  };
  const Conv2dShape& d = b.depthwise;
  const bool depthwise_3x3 = d.kh == 3 && d.kw == 3 && d.pad_h == 1 && d.pad_w == 1 && d.dilation_h == 1 &&
                             d.dilation_w == 1 && d.stride_h == d.stride_w && (d.stride_h == 1 || d.stride_h == 2) &&
                             d.groups == d.c_in && d.c_out == d.c_in;
  const bool expand_ok = !b.has_expand || (pointwise_shape(b.expand) && b.expand.c_out == d.c_in &&
                                           b.expand.h == d.h && b.expand.w == d.w && b.expand.n == d.n);
  const Conv2dShape& p = b.project;
  const bool project_ok = pointwise_shape(p) && p.c_in == d.c_in && p.h == d.out_h() && p.w == d.out_w() &&
                          p.n == d.n;
  const std::int64_t c_in = b.has_expand ? b.expand.c_in : d.c_in;
  const bool residual_ok = !b.residual || (d.stride_h == 1 && c_in == p.c_out);
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  return depthwise_3x3 && expand_ok && project_ok && residual_ok && d.c_in > 0 && d.n >= 2 * threads;
}

void inverted_residual_chain_channels_last(std::int64_t blocks, const InvertedResidualBlock* b, const float* x,
                                           float* y) {
  if (blocks == 0 || b[0].depthwise.n == 0) return;
  std::vector<Packed> plans;
  float* packed = t_packed.get(plan(blocks, b, plans));
  std::vector<std::vector<std::int64_t>> windows;
  std::int64_t stream = 0, e_floats = 0, d_floats = 0;  // floats of the largest map of each kind
  for (std::int64_t i = 0; i < blocks; ++i) {
    const Packed& p = plans[i];
    pack(b[i], p, packed);
    windows.push_back(window_starts(p));
    stream = std::max({stream, p.h * p.w * p.cs, p.oh * p.ow * p.os});
    e_floats = std::max(e_floats, (p.h + 2) * (p.w + 2) * p.hs);
    d_floats = std::max(d_floats, p.oh * p.ow * p.hs);
  }
  const Packed& first = plans.front();
  const Packed& last = plans.back();
  const std::int64_t n = b[0].depthwise.n, in_plane = first.c_in * first.h * first.w;
  const std::int64_t out_plane = last.c_out * last.oh * last.ow;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  // Whole images (inverted_residual_fuses asks for two a thread).
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t img = 0; img < n; ++img) {
    float* in = t_maps.get(2 * stream + e_floats + d_floats);
    float* out = in + stream;
    float* e = out + stream;
    float* d = e + e_floats;
    to_channels_last(x + img * in_plane, first.c_in, first.h * first.w, first.cs, in);
    for (std::size_t i = 0; i < plans.size(); ++i) {
      run_block(plans[i], packed, windows[i].data(), in, e, d, out);
      std::swap(in, out);
    }
    to_planes(in, last.c_out, last.oh * last.ow, last.os, y + img * out_plane);
  }
}

}  // namespace shrink::kernels::cpu
