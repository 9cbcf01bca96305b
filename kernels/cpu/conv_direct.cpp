// Direct convolutions on padded images (kernels/cpu/conv_direct.h).
#include "kernels/cpu/conv_direct.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/column_phases.h"
#include "kernels/cpu/conv_epilogue.h"
#include "kernels/cpu/conv_padded.h"
#include "kernels/cpu/gemm_detail.h"
#include "kernels/cpu/tiling.h"

namespace shrink::kernels::cpu {
namespace {

using namespace gemm_detail;
using namespace conv_padded;

thread_local AlignedBuffer t_weights;  // forward: W_g as A panels (calling thread)
thread_local AlignedBuffer t_padded;   // forward: one padded image, or its columns (each worker thread)
thread_local AlignedBuffer t_columns_source;  // forward, columns: the padded image they are read from
thread_local AlignedBuffer t_images;   // backward-weight: every padded image (calling thread)
thread_local AlignedBuffer t_grads;    // backward-weight: dy as 16-channel panels (calling thread)
thread_local AlignedBuffer t_sums;     // backward-weight: every tile's running sums (calling thread)


// What the last k block's store finishes each output with (earlier blocks store the plain
// partial sums): + bias, then the epilogue (conv_epilogue.h), in the order the separate passes
// took, so the bits are theirs; in the store, where a pass over the output after the tiles had
// cost 17% of a pruned MobileNetV2's inference (perf, 1 thread).
struct TileFinish {
  bool last = false;         // this k block is the last: finish the values
  const float* bias = nullptr;  // the tile's R rows' biases, or null
  const float* r0 = nullptr;    // the residual at c0 and c1 (row stride ldc), when Add
  const float* r1 = nullptr;
};

// Stores `n` <= 8 lanes of acc at c (beta 0: overwrite, never reading c; beta 1: accumulate),
// finished with `bias` and the residual at r when `last`. A missing bias is -0, which adds
// nothing to any value, -0 and NaN included.
template <bool Add, EpilogueAct Act>
inline void store_run(float* c, __m256 acc, std::int64_t n, float beta, bool last, float bias, const float* r) {
  if (n == kRun) {
    __m256 v = beta == 0.0f ? acc : _mm256_add_ps(acc, _mm256_loadu_ps(c));
    if (last) {
      v = _mm256_add_ps(v, _mm256_set1_ps(bias));
      v = epilogue8<Add, Act>(v, Add ? _mm256_loadu_ps(r) : v);
    }
    _mm256_storeu_ps(c, v);
    return;
  }
  alignas(32) float lanes[kRun];
  _mm256_store_ps(lanes, acc);
  for (std::int64_t j = 0; j < n; ++j) {
    float v = beta == 0.0f ? lanes[j] : c[j] + lanes[j];
    if (last) v = epilogue1<Add, Act>(v + bias, Add ? r[j] : 0.0f);
    c[j] = v;
  }
}

// Forward tile: C rows 0..R-1 (output channels, row stride ldc) at runs c0 (n0 pixels) and c1
// (n1 pixels, 0 for none) = beta C + sum over kc taps of A panel (kc x kMR) times the B rows
// b0[off[t]], b1[off[t]], finished by `fin`.
template <int R, bool Add, EpilogueAct Act>
void forward_tile(std::int64_t kc, const float* __restrict a, const std::int64_t* __restrict off,
                  const float* b0, const float* b1, float* c0, float* c1, std::int64_t ldc,
                  std::int64_t n0, std::int64_t n1, float beta, const TileFinish& fin) {
  __m256 acc[R][2];
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (std::int64_t t = 0; t < kc; ++t) {
    const __m256 v0 = _mm256_loadu_ps(b0 + off[t]);
    const __m256 v1 = _mm256_loadu_ps(b1 + off[t]);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(av, v0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(av, v1, acc[i][1]);
    }
    a += kMR;
  }
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    const float bias = fin.bias ? fin.bias[i] : -0.0f;
    store_run<Add, Act>(c0 + i * ldc, acc[i][0], n0, beta, fin.last, bias, Add ? fin.r0 + i * ldc : nullptr);
    if (n1 > 0) store_run<Add, Act>(c1 + i * ldc, acc[i][1], n1, beta, fin.last, bias, Add ? fin.r1 + i * ldc : nullptr);
  }
}

using ForwardTile = void (*)(std::int64_t, const float*, const std::int64_t*, const float*, const float*,
                             float*, float*, std::int64_t, std::int64_t, std::int64_t, float, const TileFinish&);
template <bool Add, EpilogueAct Act>
constexpr ForwardTile kForwardTile[kMR + 1] = {
    nullptr,                      forward_tile<1, Add, Act>, forward_tile<2, Add, Act>, forward_tile<3, Add, Act>,
    forward_tile<4, Add, Act>, forward_tile<5, Add, Act>, forward_tile<6, Add, Act>};

// Backward-weight tile: sums (R taps x 16 channels, row t at t kNR) += sum over the pixels of
// one image of x-tap values (broadcast from a[t] + pixel offset) times dy panel rows (16
// channels). The sums live in registers for the image's pixels and in memory between images,
// which changes no bit (floats stored and reloaded).
template <int R>
void weight_tile(const Conv2dShape& s, const Padded& p, const float* image, const std::int64_t* off,
                 const float* dyt, float* sums) {
  const std::int64_t oh = s.out_h(), ow = s.out_w();
  __m256 acc[R][2];
#pragma GCC unroll 6
  for (int t = 0; t < R; ++t) {
    acc[t][0] = _mm256_load_ps(sums + t * kNR);
    acc[t][1] = _mm256_load_ps(sums + t * kNR + 8);
  }
  for (std::int64_t i = 0; i < oh; ++i) {
    const float* row = image + i * s.stride_h * p.wq;
    const float* a[R];
#pragma GCC unroll 6
    for (int t = 0; t < R; ++t) a[t] = row + off[t];
    const float* b = dyt + i * ow * kNR;
    for (std::int64_t j = 0; j < ow; ++j) {
      const __m256 v0 = _mm256_load_ps(b);
      const __m256 v1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
      for (int t = 0; t < R; ++t) {
        const __m256 av = _mm256_broadcast_ss(a[t] + j);
        acc[t][0] = _mm256_fmadd_ps(av, v0, acc[t][0]);
        acc[t][1] = _mm256_fmadd_ps(av, v1, acc[t][1]);
      }
      b += kNR;
    }
  }
#pragma GCC unroll 6
  for (int t = 0; t < R; ++t) {
    _mm256_store_ps(sums + t * kNR, acc[t][0]);
    _mm256_store_ps(sums + t * kNR + 8, acc[t][1]);
  }
}

using WeightTile = void (*)(const Conv2dShape&, const Padded&, const float*, const std::int64_t*, const float*,
                            float*);
constexpr WeightTile kWeightTile[kMR + 1] = {nullptr, weight_tile<1>, weight_tile<2>, weight_tile<3>,
                                             weight_tile<4>, weight_tile<5>, weight_tile<6>};

// The im2col columns of a group (tap t's out_h x out_w pixels at t p) read from its padded copy:
// tap t of output row i starts at padded + off[t] + i row_step, its pixels consecutive. Rows are
// 4 pixels or fewer, copied as one 4-float vector each in increasing order (a shorter row's extra
// floats are overwritten by the next row; the last row's spill up to 3 floats past the columns,
// which the caller's slack takes). Read from the padded copy: im2col's bounds-tested loops on
// strided rows of 4 had taken a third of a 64 -> 128 stride-2 convolution onto 4x4.
void columns_from_padded(const float* padded, const std::int64_t* off, std::int64_t k, std::int64_t oh,
                         std::int64_t ow, std::int64_t row_step, float* col) {
  for (std::int64_t t = 0; t < k; ++t) {
    const float* src = padded + off[t];
    for (std::int64_t i = 0; i < oh; ++i, col += ow) _mm_storeu_ps(col, _mm_loadu_ps(src + i * row_step));
  }
}

// The forward convolution `s` of x; with `strided` (a strided pointwise convolution, s its
// subsampled image as one row) each image's copy takes the pixels `strided` reads straight from x.
void forward_direct(const Conv2dShape& s, const Conv2dShape* strided, const float* x, const float* w,
                    const float* bias, float* y, const ConvEpilogue& post) {
  const std::int64_t cig = s.c_in / s.groups, cog = s.c_out / s.groups;
  const std::int64_t k = cig * s.kh * s.kw, oh = s.out_h(), ow = s.out_w(), p = oh * ow;
  // Output channels in panels of at most kMR rows, balanced (8 -> 4 + 4, not 6 + 2): a tile
  // keeps 2 R accumulators in flight, and R = 2 leaves the FMA pipes waiting on latency.
  const std::int64_t panels = ceil_div(cog, kMR), m_pad = panels * kMR;
  std::vector<std::int64_t> panel_starts(static_cast<std::size_t>(panels + 1));  // panel j: rows [starts[j], starts[j + 1])
  for (std::int64_t j = 0; j <= panels; ++j) panel_starts[static_cast<std::size_t>(j)] = cog * j / panels;
  auto panel_start = [&](std::int64_t j) { return panel_starts[static_cast<std::size_t>(j)]; };
  const Padded pad(s);
  // Output rows of 4 pixels or fewer (a 4x4 map) would leave half of every run's lanes idle: such
  // an image is read as its im2col columns instead (tap k's row of p pixels at k p), one output
  // "row" of p pixels, where that takes fewer tiles. ResNet-18's 3x3 stride-2 convolution onto
  // 4x4 ran at half the FLOP rate of the 8x8 ones (batch 64, 1 thread: 48.0 -> 26.6 ms).
  const auto tiles_of = [](std::int64_t runs) { return ceil_div(runs, 2); };
  const bool columns = 2 * ow <= kRun && (s.kh > 1 || s.kw > 1) &&
                       tiles_of(ceil_div(p, kRun)) < tiles_of(oh * ceil_div(ow, kRun));
  const std::int64_t row_w = columns ? p : ow, rows = columns ? 1 : oh;
  const std::int64_t row_step = columns ? 0 : s.stride_h * pad.wq;  // between output rows' run starts
  const std::int64_t group_floats = columns ? k * p : cig * pad.plane();
  const std::int64_t image_floats = columns ? s.groups * group_floats + kSlack : pad.image(s.c_in);
  const std::vector<std::int64_t> padded_off = tap_offsets(s, pad, cig);
  std::vector<std::int64_t> off = padded_off;
  if (columns)
    for (std::int64_t t = 0; t < k; ++t) off[static_cast<std::size_t>(t)] = t * p;
  // A tile is two runs; runs are numbered row by row, so a tile may span two output rows.
  const std::int64_t runs_per_row = ceil_div(row_w, kRun), runs = rows * runs_per_row, tiles = tiles_of(runs);
  // Run u: output row i = u / runs_per_row, pixels from j = (u % runs_per_row) kRun: its start in
  // the image copy, its offset in the output and its length, tabulated once (the divisions per run
  // and per panel had cost more than a tile's multiply-adds where k is 8, 1x1 on 8 channels).
  struct Run {
    std::int64_t src, at, n;
  };
  std::vector<Run> run_of(static_cast<std::size_t>(runs + 1));
  for (std::int64_t u = 0; u < runs; ++u) {
    const std::int64_t i = u / runs_per_row, j = u % runs_per_row * kRun;
    run_of[static_cast<std::size_t>(u)] = {i * row_step + j, i * row_w + j, std::min(kRun, row_w - j)};
  }
  if (runs > 0) run_of[static_cast<std::size_t>(runs)] = {run_of[static_cast<std::size_t>(runs - 1)].src,
                                                          run_of[static_cast<std::size_t>(runs - 1)].at, 0};
  // (that last entry: an odd last tile's empty second run)
  // Work items: whole images when there are enough of them, else parts of an image's tiles, or of
  // its output-channel panels when it has fewer tiles than parts wanted and more panels than tiles
  // (each part copies its image again: cheap beside its share of the multiply-adds).
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const std::int64_t want = ceil_div(2 * threads, std::max<std::int64_t>(s.n, 1));
  const bool split_panels = tiles < want && panels > tiles;
  const std::int64_t parts = s.n >= 2 * threads ? 1 : std::min(split_panels ? panels : tiles, want);
  const std::int64_t items = s.n * parts;
  float* const wpack = t_weights.get(s.groups * m_pad * k);
  for (std::int64_t g = 0; g < s.groups; ++g)  // block p0 of group g at (g k + p0) m_pad, panel ip at + ip kc
    for (std::int64_t p0 = 0; p0 < k; p0 += kKC) {
      const std::int64_t kc = std::min(kKC, k - p0);
      for (std::int64_t j = 0; j < panels; ++j)
        pack_panel_a(w + (g * cog + panel_start(j)) * k + p0, k, true, panel_start(j + 1) - panel_start(j), kc,
                     1.0f, wpack + (g * k + p0) * m_pad + j * kMR * kc);
    }
  const ForwardTile* tile_kernels = nullptr;  // the ones with post's epilogue
  with_epilogue(post, [&]<bool Add, EpilogueAct Act>() { tile_kernels = kForwardTile<Add, Act>; });
  const bool parallel = threads > 1 && items > 1 && s.n * s.c_out * p * k > kConvParallelWork;
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t item = 0; item < items; ++item) {
    const std::int64_t img = item / parts, part = item % parts;
    const std::int64_t t0 = split_panels ? 0 : tiles * part / parts, t1 = split_panels ? tiles : tiles * (part + 1) / parts;
    const std::int64_t j0 = split_panels ? panels * part / parts : 0;
    const std::int64_t j1 = split_panels ? panels * (part + 1) / parts : panels;
    float* copy = t_padded.get(image_floats);
    const float* x_img = x + img * (strided ? strided->c_in * strided->h * strided->w : s.c_in * s.h * s.w);
    if (strided) {
      subsample_image(*strided, x_img, copy);
    } else if (columns) {
      float* padded = t_columns_source.get(pad.image(s.c_in));
      pad_image(s, pad, x_img, s.c_in, padded);
      for (std::int64_t g = 0; g < s.groups; ++g)
        columns_from_padded(padded + g * cig * pad.plane(), padded_off.data(), k, oh, ow, s.stride_h * pad.wq,
                            copy + g * group_floats);
      std::fill_n(copy + s.groups * group_floats, kSlack, 0.0f);  // the last run's load may pass the end
    } else {
      pad_image(s, pad, x_img, s.c_in, copy);
    }
    for (std::int64_t g = 0; g < s.groups; ++g) {
      const float* image = copy + g * group_floats;
      float* y_g = y + (img * s.c_out + g * cog) * p;
      const float* r_g = residual_at<float>(post, (img * s.c_out + g * cog) * p);  // null without one
      for (std::int64_t p0 = 0; p0 < k; p0 += kKC) {
        const std::int64_t kc = std::min(kKC, k - p0);
        const float beta = p0 == 0 ? 0.0f : 1.0f;  // later k blocks accumulate onto the first
        for (std::int64_t tile = t0; tile < t1; ++tile) {
          const Run& r0 = run_of[static_cast<std::size_t>(2 * tile)];
          const Run& r1 = run_of[static_cast<std::size_t>(2 * tile + 1)];
          for (std::int64_t j = j0; j < j1; ++j) {
            const std::int64_t ip = panel_start(j);
            TileFinish fin;
            fin.last = p0 + kc == k;
            fin.bias = bias ? bias + g * cog + ip : nullptr;
            if (r_g) fin.r0 = r_g + ip * p + r0.at, fin.r1 = r_g + ip * p + r1.at;
            tile_kernels[panel_start(j + 1) - ip](kc, wpack + (g * k + p0) * m_pad + j * kMR * kc, off.data() + p0,
                                                  image + r0.src, image + r1.src, y_g + ip * p + r0.at,
                                                  y_g + ip * p + r1.at, p, r0.n, r1.n, beta, fin);
          }
        }
      }
    }
  }
}

}  // namespace

void conv2d_forward_direct(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                           float* y, const ConvEpilogue& post) {
  // A strided pointwise convolution subsamples each image into its copy (a pass over the whole
  // batch first, then the copy, had cost half of a 16 -> 32 ResNet shortcut at 2 threads).
  if (is_strided_pointwise(s)) return forward_direct(as_one_row(pointwise_subsampled(s)), &s, x, w, bias, y, post);
  forward_direct(runs_as_one_row(s) ? as_one_row(s) : s, nullptr, x, w, bias, y, post);
}

bool backward_input_is_forward(const Conv2dShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.pad_h <= s.dilation_h * (s.kh - 1) &&
         s.pad_w <= s.dilation_w * (s.kw - 1);
}

Conv2dShape backward_input_as_forward(const Conv2dShape& s, const float* w, std::vector<float>& flipped) {
  const std::int64_t cig = s.c_in / s.groups, cog = s.c_out / s.groups, taps = s.kh * s.kw;
  flipped.resize(static_cast<std::size_t>(s.c_in * cog * taps));
  for (std::int64_t g = 0; g < s.groups; ++g)
    for (std::int64_t ci = 0; ci < cig; ++ci)
      for (std::int64_t co = 0; co < cog; ++co)
        for (std::int64_t t = 0; t < taps; ++t)  // tap t = (r, q) meets flipped tap taps-1-t
          flipped[static_cast<std::size_t>(((g * cig + ci) * cog + co) * taps + (taps - 1 - t))] =
              w[((g * cog + co) * cig + ci) * taps + t];
  return backward_input_forward_shape(s);
}

Conv2dShape backward_input_forward_shape(const Conv2dShape& s) {
  Conv2dShape t = s;
  t.c_in = s.c_out;
  t.c_out = s.c_in;
  t.h = s.out_h();
  t.w = s.out_w();
  t.pad_h = s.dilation_h * (s.kh - 1) - s.pad_h;
  t.pad_w = s.dilation_w * (s.kw - 1) - s.pad_w;
  return t;
}

void conv2d_backward_weight_direct(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const float* sub = nullptr;
  if (const auto t = subsample_pointwise(s, x, sub)) return conv2d_backward_weight_direct(*t, sub, dy, dw);
  const std::int64_t cig = s.c_in / s.groups, cog = s.c_out / s.groups;
  const std::int64_t k = cig * s.kh * s.kw, p = s.out_h() * s.out_w();
  const Padded pad(s);
  const std::vector<std::int64_t> off = tap_offsets(s, pad, cig);
  // A tile's taps are broadcast one float at a time: no load passes an image's end.
  const bool in_place = is_plain_pointwise(s);
  const std::int64_t image_floats = in_place ? s.c_in * s.h * s.w : pad.image(s.c_in);
  const std::int64_t col_panels = ceil_div(cog, kNR), row_panels = ceil_div(k, kMR);
  const std::int64_t panel_floats = p * kNR, grad_floats = s.groups * col_panels * panel_floats;
  float* const copies = in_place ? nullptr : t_images.get(std::max<std::int64_t>(s.n, 1) * image_floats);
  const float* const images = in_place ? x : copies;
  float* const grads = t_grads.get(std::max<std::int64_t>(s.n, 1) * grad_floats);
  const bool parallel = !omp_in_parallel() && s.n * s.c_out * p * k > kConvParallelWork;
  // Padded images and dy's channels as panels (dyt[pixel kNR + channel]), image by image.
#pragma omp parallel for schedule(static) if (parallel && s.n > 1)
  for (std::int64_t img = 0; img < s.n; ++img) {
    if (!in_place) pad_image(s, pad, x + img * s.c_in * s.h * s.w, s.c_in, copies + img * image_floats);
    for (std::int64_t g = 0; g < s.groups; ++g)
      for (std::int64_t jp = 0; jp < col_panels; ++jp)
        pack_panel_b(dy + (img * s.c_out + g * cog + jp * kNR) * p, p, true, std::min(kNR, cog - jp * kNR), p,
                     grads + img * grad_floats + (g * col_panels + jp) * panel_floats);
  }
  // Tiles in (group, channel panel, tap panel) order: a thread's consecutive tiles share a dy
  // panel, and every tile of an image reads the same padded image, both kept in L2 while the
  // thread passes over its tiles image by image.
  const std::int64_t tiles = s.groups * col_panels * row_panels;
  float* const sums = t_sums.get(tiles * kMR * kNR);
#pragma omp parallel if (parallel && tiles > 1)
  {
    // Fixed tiles per thread: each element of dW is summed by one thread, in image order.
    const std::int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    const std::int64_t tile0 = tiles * t / threads, tile1 = tiles * (t + 1) / threads;
    std::fill(sums + tile0 * kMR * kNR, sums + tile1 * kMR * kNR, 0.0f);
    auto where = [&](std::int64_t tile, std::int64_t& g, std::int64_t& jp, std::int64_t& ip) {
      g = tile / (col_panels * row_panels);
      jp = tile % (col_panels * row_panels) / row_panels;
      ip = tile % row_panels * kMR;
    };
    for (std::int64_t img = 0; img < s.n; ++img)
      for (std::int64_t tile = tile0; tile < tile1; ++tile) {
        std::int64_t g, jp, ip;
        where(tile, g, jp, ip);
        kWeightTile[std::min(kMR, k - ip)](s, pad, images + img * image_floats + g * cig * pad.plane(),
                                           off.data() + ip, grads + img * grad_floats + (g * col_panels + jp) * panel_floats,
                                           sums + tile * kMR * kNR);
      }
    // Row t of a tile's sums is dW[o, ip + t] for its 16 channels o: stored transposed.
    for (std::int64_t tile = tile0; tile < tile1; ++tile) {
      std::int64_t g, jp, ip;
      where(tile, g, jp, ip);
      const float* sum = sums + tile * kMR * kNR;
      for (std::int64_t r = 0; r < std::min(kMR, k - ip); ++r)
        for (std::int64_t o = 0; o < std::min(kNR, cog - jp * kNR); ++o)
          dw[(g * cog + jp * kNR + o) * k + ip + r] = sum[r * kNR + o];
    }
  }
}

}  // namespace shrink::kernels::cpu
