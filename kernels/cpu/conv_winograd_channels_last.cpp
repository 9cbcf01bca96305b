// Winograd F(4x4, 3x3) with channels as the vector lanes
// (kernels/cpu/conv_winograd_channels_last.h; transforms in winograd_tiles.h).
#include "kernels/cpu/conv_winograd_channels_last.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/conv_epilogue.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/filter_cache.h"
#include "kernels/cpu/lane_mask.h"
#include "kernels/cpu/simd_transpose.h"
#include "kernels/cpu/tiling.h"
#include "kernels/cpu/winograd_tiles.h"

namespace shrink::kernels::cpu {
namespace {

using namespace winograd;

constexpr std::int64_t kVec = 8;    // channels a vector
constexpr std::int64_t kGroup = 8;  // tiles that go through V, M and the output transform together

thread_local AlignedBuffer t_u;       // U (calling thread)
thread_local AlignedBuffer t_padded;  // one image, padded, channels-last (each worker)
thread_local AlignedBuffer t_vm;      // V and M of one group of tiles (each worker)
thread_local AlignedBuffer t_out;     // a band of output rows, channels-last (each worker)

// The sizes of one call. Channel c of padded pixel (r, q) sits at (r wp + q) cs + c; output
// channel o of scratch pixel (r, q) at (r orow + q) os + o.
struct Layout {
  std::int64_t cs, os;          // floats a pixel: input, output channels rounded up to vectors
  std::int64_t oh, ow, th, tw;  // output size, tile rows and columns
  std::int64_t hp, wp;          // padded input rows, columns (4 th + 2, 4 tw + 2)
  std::int64_t orow;            // output scratch columns: 4 tw rounded up to a vector of pixels
  explicit Layout(const Conv2dShape& s)
      : cs(round_up(s.c_in, kVec)), os(round_up(s.c_out, kVec)), oh(s.out_h()), ow(s.out_w()),
        th(ceil_div(oh, kTile)), tw(ceil_div(ow, kTile)), hp(kTile * th + 2), wp(kTile * tw + 2),
        orow(round_up(kTile * tw, kVec)) {}
};

// U[pos][c][o] = (G g G^T)[pos] for g = w[o, c], 8 output channels a vector (zero past c_out).
void transform_weights(const Conv2dShape& s, const Layout& L, const float* w, float* u) {
  for (std::int64_t c = 0; c < s.c_in; ++c)
    for (std::int64_t o0 = 0; o0 < s.c_out; o0 += kVec) {
      __m256 taps[9];
      load_filters(w + (o0 * s.c_in + c) * 9, s.c_in * 9, std::min(kVec, s.c_out - o0), taps);
      transform_filters(taps, [&](int pos, __m256 v) { _mm256_store_ps(u + (pos * s.c_in + c) * L.os + o0, v); });
    }
}

// U of w, kept across calls while w is unchanged (filter_cache.h), else written to scratch.
const float* cached_weights(const Conv2dShape& s, const Layout& L, const float* w, float* scratch, FilterHold& hold) {
  return transformed_filters({FilterTransform::WinogradChannelsLast, w, s.c_out * s.c_in * 9, s.c_in, s.c_out},
                             kPos * s.c_in * L.os, scratch, [&](float* u) { transform_weights(s, L, w, u); }, hold);
}

// One image's c_in planes into the zero-padded channels-last copy p: 8 pixels x 8 channels
// at a time, read as rows of each plane and transposed.
void pad_image(const Conv2dShape& s, const Layout& L, const float* x, float* p) {
  const std::int64_t plane = s.h * s.w, cs = L.cs, row_floats = L.wp * cs;
  // Zeros where no input lands: whole rows above and below, then each row's ends.
  std::fill_n(p, s.pad_h * row_floats, 0.0f);
  std::fill(p + (s.pad_h + s.h) * row_floats, p + L.hp * row_floats, 0.0f);
  for (std::int64_t i = 0; i < s.h; ++i) {
    float* padded_row = p + (i + s.pad_h) * row_floats;
    std::fill_n(padded_row, s.pad_w * cs, 0.0f);
    std::fill(padded_row + (s.pad_w + s.w) * cs, padded_row + row_floats, 0.0f);
  }
  for (std::int64_t i = 0; i < s.h; ++i) {
    float* row = p + (i + s.pad_h) * row_floats + s.pad_w * cs;
    for (std::int64_t j0 = 0; j0 < s.w; j0 += kVec) {
      const std::int64_t n = std::min(kVec, s.w - j0);
      const __m256i live = first_lanes(n);
      for (std::int64_t c0 = 0; c0 < s.c_in; c0 += kVec) {
        __m256 r[kVec];
        for (std::int64_t k = 0; k < kVec; ++k)
          r[k] = c0 + k >= s.c_in ? _mm256_setzero_ps()
                 : n == kVec     ? _mm256_loadu_ps(x + (c0 + k) * plane + i * s.w + j0)
                                 : _mm256_maskload_ps(x + (c0 + k) * plane + i * s.w + j0, live);
        transpose8(r);
        for (std::int64_t k = 0; k < n; ++k) _mm256_store_ps(row + (j0 + k) * cs + c0, r[k]);
      }
    }
  }
}

// The pixel strides of one call's maps as compile-time constants where with_strides gives them
// (CS: the input's, OS: the output's; 0: read from the Layout at run time). Every tile's loads
// and stores then sit at constant displacements: with the strides read from L, each store
// (an intrinsic store may alias L) reloaded L.cs and multiplied again (36 imuls a tile), and
// the transforms of the 8-channel layer at 32x32 cost 1.6x its multiply-adds.
template <std::int64_t CS, std::int64_t OS>
struct Strides {
  static std::int64_t in(const Layout& L) { return CS ? CS : L.cs; }
  static std::int64_t out(const Layout& L) { return OS ? OS : L.os; }
};

// Runs f.template operator()<S>() with `stride` as the constant S where it is 8, 16, 32 or 64
// floats (every stride this kernel takes: at most 64 channels), else S = 0 (read at run time).
template <class F>
void with_stride(std::int64_t stride, F&& f) {
  switch (stride) {
    case kVec: return f.template operator()<kVec>();
    case 2 * kVec: return f.template operator()<2 * kVec>();
    case 4 * kVec: return f.template operator()<4 * kVec>();
    case 8 * kVec: return f.template operator()<8 * kVec>();
    default: return f.template operator()<0>();
  }
}

// Runs f.template operator()<CS, OS>() with the layout's input and output strides as constants.
template <class F>
void with_strides(const Layout& L, F&& f) {
  with_stride(L.cs, [&]<std::int64_t CS>() {
    with_stride(L.os, [&]<std::int64_t OS>() { f.template operator()<CS, OS>(); });
  });
}

// v[pos][c] = (B^T d B)[pos] of tile (ty, tx), 8 channels at a time.
template <std::int64_t CS, std::int64_t OS>
void transform_input(const Layout& L, const float* p, std::int64_t ty, std::int64_t tx, float* v) {
  const std::int64_t cs = Strides<CS, OS>::in(L), row = L.wp * cs;  // locals: the stores may alias L
  const float* tile = p + kTile * (ty * row + tx * cs);
  for (std::int64_t c0 = 0; c0 < cs; c0 += kVec) {
    const float* corner = tile + c0;
    __m256 t[kAlpha][kAlpha];  // B^T d, column by column
    for (int q = 0; q < kAlpha; ++q) {
      __m256 col[kAlpha], out[kAlpha];
      for (int r = 0; r < kAlpha; ++r) col[r] = _mm256_load_ps(corner + r * row + q * cs);
      input_1d(col, out);
      for (int i = 0; i < kAlpha; ++i) t[i][q] = out[i];
    }
    for (int i = 0; i < kAlpha; ++i) {
      __m256 out[kAlpha];
      input_1d(t[i], out);  // (B^T d) B
      for (int l = 0; l < kAlpha; ++l) _mm256_store_ps(v + (i * kAlpha + l) * cs + c0, out[l]);
    }
  }
}

// m[t][pos][o] = sum over c of v[t][pos][c] u[pos][c][o] for the group's Count tiles, one
// position and 8 outputs at a time: per input channel one load of U and a broadcast of V per
// tile into Count accumulators. (At 16 outputs, 4 tiles x 2 output vectors per pass load less
// but measured 5-7% slower on 8 -> 16 and 16 -> 16 layers; 6 x 2, slower still.) The pixel
// strides CS, OS (floats: 8 or 16) are template arguments so that each tile's V sits at a
// constant displacement: no address arithmetic between the broadcasts (the 8-channel layer at
// 32x32, batch 64, 2 threads: 371 -> 297 us).
template <int Count, int Vecs, std::int64_t CS, std::int64_t OS>
inline void multiply_outputs(std::int64_t c_in, std::int64_t cs, std::int64_t os, const float* u, const float* v,
                             float* m, std::int64_t pos, std::int64_t o0) {
  const std::int64_t v_stride = CS ? CS : cs, o_stride = OS ? OS : os;  // 0: a stride known at run time
  __m256 acc[Count][Vecs];
  const float* vt[Count];  // each tile's V row at this position
#pragma GCC unroll 8
  for (int t = 0; t < Count; ++t) {
#pragma GCC unroll 2
    for (int k = 0; k < Vecs; ++k) acc[t][k] = _mm256_setzero_ps();
    vt[t] = v + (t * kPos + pos) * v_stride;
  }
  const float* up = u + pos * c_in * o_stride + o0;
  for (std::int64_t c = 0; c < c_in; ++c) {
    __m256 uc[Vecs];
#pragma GCC unroll 2
    for (int k = 0; k < Vecs; ++k) uc[k] = _mm256_load_ps(up + c * o_stride + k * kVec);
#pragma GCC unroll 8
    for (int t = 0; t < Count; ++t) {
      const __m256 vc = _mm256_broadcast_ss(vt[t] + c);
#pragma GCC unroll 2
      for (int k = 0; k < Vecs; ++k) acc[t][k] = _mm256_fmadd_ps(vc, uc[k], acc[t][k]);
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < Count; ++t)
#pragma GCC unroll 2
    for (int k = 0; k < Vecs; ++k) _mm256_store_ps(m + (t * kPos + pos) * o_stride + o0 + k * kVec, acc[t][k]);
}

// Groups of 4 tiles or fewer (an 8x8 map in a chain is 4 tiles an image) take 2 output vectors a
// pass where there are 16 outputs or more: 6 loads for 8 FMAs where one vector takes 5 for 4,
// and the loads set the pace (a block-inner pruned ResNet-20's 64 -> 16 -> 64 at 8x8: about
// 10% of its batch in this loop). Either way each sum runs over c in order: the same bits.
template <int Count, std::int64_t CS, std::int64_t OS>
void multiply(std::int64_t c_in, std::int64_t runtime_cs, std::int64_t runtime_os, const float* u, const float* v,
              float* m) {
  const std::int64_t os = OS ? OS : runtime_os;
  for (std::int64_t pos = 0; pos < kPos; ++pos) {
    std::int64_t o0 = 0;
    if constexpr (Count <= 4)
      for (; o0 + 2 * kVec <= os; o0 += 2 * kVec)
        multiply_outputs<Count, 2, CS, OS>(c_in, runtime_cs, runtime_os, u, v, m, pos, o0);
    for (; o0 < os; o0 += kVec) multiply_outputs<Count, 1, CS, OS>(c_in, runtime_cs, runtime_os, u, v, m, pos, o0);
  }
}
using Multiply = void (*)(std::int64_t, std::int64_t, std::int64_t, const float*, const float*, float*);
template <std::int64_t CS, std::int64_t OS>
constexpr std::array<Multiply, kGroup + 1> multiplies() {
  return {nullptr,
          multiply<1, CS, OS>,
          multiply<2, CS, OS>,
          multiply<3, CS, OS>,
          multiply<4, CS, OS>,
          multiply<5, CS, OS>,
          multiply<6, CS, OS>,
          multiply<7, CS, OS>,
          multiply<8, CS, OS>};
}

// M of `count` tiles' V, with the pixel strides as compile-time constants where with_strides
// (above) gives them (0: read at run time).
template <std::int64_t CS, std::int64_t OS>
void multiply_group(const Layout& L, std::int64_t c_in, std::int64_t count, const float* u, const float* v, float* m) {
  static constexpr std::array<Multiply, kGroup + 1> kByCount = multiplies<CS, OS>();
  kByCount[static_cast<std::size_t>(count)](c_in, L.cs, L.os, u, v, m);
}

// y[i][k] = (A^T m A)[i][k] + bias for outputs o0..o0+7 of one tile (os floats a position of m):
// the output transform.
inline void output_tile(std::int64_t os, const float* m, const float* bias, std::int64_t o0, __m256 y[kTile][kTile]) {
  const __m256 add = _mm256_load_ps(bias + o0);
  __m256 t[kTile][kAlpha];  // A^T m, column by column
  for (int j = 0; j < kAlpha; ++j) {
    __m256 col[kAlpha], r[kTile];
    for (int i = 0; i < kAlpha; ++i) col[i] = _mm256_load_ps(m + (i * kAlpha + j) * os + o0);
    output_1d(col, r);
    for (int i = 0; i < kTile; ++i) t[i][j] = r[i];
  }
  for (int i = 0; i < kTile; ++i) {
    output_1d(t[i], y[i]);  // (A^T m) A
    for (int k = 0; k < kTile; ++k) y[i][k] = _mm256_add_ps(y[i][k], add);
  }
}

// Where output pixel (r, j) of tile row ty, column tx sits in a zero-padded channels-last map
// of L's output size (padding 1, os floats a pixel): padded pixel (r + 1, j + 1).
inline std::int64_t padded_at(const Layout& L, std::int64_t os, std::int64_t ty, std::int64_t i, std::int64_t tx) {
  return ((kTile * ty + i + 1) * L.wp + kTile * tx + 1) * os;
}

// Scratch pixels (4 ty_band + i, 4 tx + k) = (A^T m A)[i][k] + bias, plus the padded
// channels-last `residual` (null: none) at tile (ty, tx) of the whole map.
template <std::int64_t CS, std::int64_t OS>
void transform_output(const Layout& L, const float* m, const float* bias, std::int64_t ty_band, std::int64_t tx,
                      const float* residual, std::int64_t ty, float* out) {
  const std::int64_t os = Strides<CS, OS>::out(L), orow = L.orow;  // locals: the stores may alias L
  const std::int64_t res_at = residual ? padded_at(L, os, ty, 0, tx) : 0, res_row = L.wp * os;
  float* tile = out + (kTile * ty_band * orow + kTile * tx) * os;
  for (std::int64_t o0 = 0; o0 < os; o0 += kVec) {
    __m256 y[kTile][kTile];
    output_tile(os, m, bias, o0, y);
    for (int i = 0; i < kTile; ++i) {
      float* dst = tile + i * orow * os + o0;
      const float* r = residual ? residual + res_at + i * res_row + o0 : nullptr;
      for (int k = 0; k < kTile; ++k)
        _mm256_store_ps(dst + k * os, r ? _mm256_add_ps(y[i][k], _mm256_load_ps(r + k * os)) : y[i][k]);
    }
  }
}

// Output rows [r0, r1) of one image from the channels-last scratch (row r0 first) to NCHW y,
// through the epilogue (Add: + `residual`, this image's; then Act).
template <bool Add, EpilogueAct Act>
void store_rows(const Conv2dShape& s, const Layout& L, const float* out, std::int64_t r0, std::int64_t r1,
                const float* residual, float* y) {
  // Locals: y may alias anything a float can, so fields read through s or L would be reloaded
  // after every store.
  const std::int64_t c_out = s.c_out, ow = L.ow, os = L.os, plane = L.oh * ow, orow = L.orow;
  for (std::int64_t r = r0; r < r1; ++r) {
    const float* row = out + (r - r0) * orow * os;
    for (std::int64_t j0 = 0; j0 < ow; j0 += kVec) {
      const std::int64_t n = std::min(kVec, ow - j0);
      const __m256i live = first_lanes(n);
      for (std::int64_t o0 = 0; o0 < c_out; o0 += kVec) {
        __m256 v[kVec];
        for (std::int64_t k = 0; k < kVec; ++k)  // pixels past the row: any value, never stored
          v[k] = _mm256_load_ps(row + (j0 + std::min(k, n - 1)) * os + o0);
        transpose8(v);  // v[c]: channel o0 + c over the 8 pixels
        // A masked store is microcoded on some x86 cores (tens of cycles): tails only.
        const std::int64_t channels = std::min(kVec, c_out - o0);
        for (std::int64_t c = 0; c < channels; ++c) {
          const std::int64_t at = (o0 + c) * plane + r * ow + j0;
          if (n == kVec) {
            const __m256 rv = Add ? _mm256_loadu_ps(residual + at) : v[c];
            _mm256_storeu_ps(y + at, epilogue8<Add, Act>(v[c], rv));
          } else {
            const __m256 rv = Add ? _mm256_maskload_ps(residual + at, live) : v[c];
            _mm256_maskstore_ps(y + at, live, epilogue8<Add, Act>(v[c], rv));
          }
        }
      }
    }
  }
}

void store_output(const Conv2dShape& s, const Layout& L, const float* out, std::int64_t r0, std::int64_t r1,
                  const ConvEpilogue& post, const float* residual, float* y) {
  with_epilogue(post, [&]<bool Add, EpilogueAct Act>() { store_rows<Add, Act>(s, L, out, r0, r1, residual, y); });
}

// Tile rows [ty0, ty1) of image `img`, kStripRows tile rows at a time: a strip's output scratch
// (8 rows x 32 pixels x 8 channels on a 32x32 map, 8 x 16 x 64 on a 16x16 one: at most 32 KiB
// where conv2d runs this kernel) is still in L1/L2 when it is transposed into y. (Whole images
// instead: 8 -> 16 on 32x32 maps ran 1.10x slower.)
constexpr std::int64_t kStripRows = 2;
// residual_cl: a padded channels-last residual of this image (added before `post`), or null.
template <std::int64_t CS, std::int64_t OS>
void run_band_strides(const Conv2dShape& s, const Layout& L, const float* p, const float* u, const float* bias,
                      const ConvEpilogue& post, std::int64_t img, std::int64_t ty0, std::int64_t ty1, float* y,
                      const float* residual_cl) {
  const std::int64_t cs = Strides<CS, OS>::in(L), os = Strides<CS, OS>::out(L), tw = L.tw;
  const std::int64_t y_image = img * s.c_out * L.oh * L.ow;
  const float* residual = post.residual ? static_cast<const float*>(post.residual) + y_image : nullptr;
  float* v = t_vm.get(kGroup * kPos * (cs + os));
  float* m = v + kGroup * kPos * cs;
  float* out = t_out.get(kStripRows * kTile * L.orow * os);
  for (std::int64_t strip = ty0; strip < ty1; strip += kStripRows) {
    const std::int64_t strip_end = std::min(strip + kStripRows, ty1);  // never into the next band's rows
    const std::int64_t t1 = strip_end * tw;
    for (std::int64_t t0 = strip * tw; t0 < t1; t0 += kGroup) {
      const std::int64_t count = std::min(kGroup, t1 - t0);
      for (std::int64_t t = 0; t < count; ++t)
        transform_input<CS, OS>(L, p, (t0 + t) / tw, (t0 + t) % tw, v + t * kPos * cs);
      multiply_group<CS, OS>(L, s.c_in, count, u, v, m);
      for (std::int64_t t = 0; t < count; ++t)
        transform_output<CS, OS>(L, m + t * kPos * os, bias, (t0 + t) / tw - strip, (t0 + t) % tw, residual_cl,
                                 (t0 + t) / tw, out);
    }
    store_output(s, L, out, kTile * strip, std::min(kTile * strip_end, L.oh), post, residual, y + y_image);
  }
}

void run_band(const Conv2dShape& s, const Layout& L, const float* p, const float* u, const float* bias,
              const ConvEpilogue& post, std::int64_t img, std::int64_t ty0, std::int64_t ty1, float* y,
              const float* residual_cl = nullptr) {
  with_strides(L, [&]<std::int64_t CS, std::int64_t OS>() {
    run_band_strides<CS, OS>(s, L, p, u, bias, post, img, ty0, ty1, y, residual_cl);
  });
}

// A convolution inside a chain of residual blocks, written ReLU'd straight into the next
// convolution's zero-padded channels-last input q instead of through NCHW: output pixel (r, j)
// goes to padded pixel (r + 1, j + 1) of q (L.os floats a pixel, the next convolution's L.cs),
// after adding the same pixel of `residual` (null: none), a padded channels-last map laid out as
// q. (The same sums, add and ReLU as transform_output then store_rows' epilogue and the next
// call's pad_image: the same bits.)
template <std::int64_t CS, std::int64_t OS>
void transform_output_padded(const Layout& L, const float* m, const float* bias, std::int64_t ty, std::int64_t tx,
                             const float* residual, float* q) {
  const std::int64_t os = Strides<CS, OS>::out(L), row = L.wp * os;  // locals: the stores may alias L
  const std::int64_t at0 = padded_at(L, os, ty, 0, tx);
  const __m256 zero = _mm256_setzero_ps();
  for (std::int64_t o0 = 0; o0 < os; o0 += kVec) {
    __m256 y[kTile][kTile];
    output_tile(os, m, bias, o0, y);
    for (int i = 0; i < kTile; ++i) {
      const std::int64_t at = at0 + i * row + o0;
      for (int k = 0; k < kTile; ++k) {
        const __m256 v = residual ? _mm256_add_ps(y[i][k], _mm256_load_ps(residual + at + k * os)) : y[i][k];
        _mm256_store_ps(q + at + k * os, _mm256_max_ps(v, zero));
      }
    }
  }
}

// Every tile of one image through one convolution into q (above); then q's border (row 0, the
// rows and columns past the map, where partial tiles wrote too) is zeroed: the padding the next
// convolution reads.
template <std::int64_t CS, std::int64_t OS>
void conv_into_padded_strides(const Conv2dShape& s, const Layout& L, const float* p, const float* u,
                              const float* bias, const float* residual, float* q) {
  const std::int64_t cs = Strides<CS, OS>::in(L), os = Strides<CS, OS>::out(L), tw = L.tw;
  float* v = t_vm.get(kGroup * kPos * (cs + os));
  float* m = v + kGroup * kPos * cs;
  const std::int64_t tiles = L.th * tw;
  for (std::int64_t t0 = 0; t0 < tiles; t0 += kGroup) {
    const std::int64_t count = std::min(kGroup, tiles - t0);
    for (std::int64_t t = 0; t < count; ++t)
      transform_input<CS, OS>(L, p, (t0 + t) / tw, (t0 + t) % tw, v + t * kPos * cs);
    multiply_group<CS, OS>(L, s.c_in, count, u, v, m);
    for (std::int64_t t = 0; t < count; ++t)
      transform_output_padded<CS, OS>(L, m + t * kPos * os, bias, (t0 + t) / tw, (t0 + t) % tw, residual, q);
  }
  const std::int64_t row = L.wp * os;
  std::fill_n(q, row, 0.0f);
  std::fill(q + (L.oh + 1) * row, q + L.hp * row, 0.0f);
  for (std::int64_t r = 1; r <= L.oh; ++r) {
    std::fill_n(q + r * row, os, 0.0f);
    std::fill(q + r * row + (L.ow + 1) * os, q + (r + 1) * row, 0.0f);
  }
}

void conv_into_padded(const Conv2dShape& s, const Layout& L, const float* p, const float* u, const float* bias,
                      const float* residual, float* q) {
  with_strides(L, [&]<std::int64_t CS, std::int64_t OS>() {
    conv_into_padded_strides<CS, OS>(s, L, p, u, bias, residual, q);
  });
}

thread_local AlignedBuffer t_chain_biases;  // each convolution's bias in 64 lanes (calling thread)

}  // namespace

bool residual_pair_fuses(const Conv2dShape& s1, const Conv2dShape& s2) {
  const auto same_padding_3x3 = [](const Conv2dShape& s) {
    return s.kh == 3 && s.kw == 3 && s.pad_h == 1 && s.pad_w == 1 && s.out_h() == s.h && s.out_w() == s.w;
  };
  // In a chain the layout copies are gone (each convolution reads and writes the padded
  // channels-last maps), so the kernel also takes the large-map layers it only matches standalone,
  // while an image's three maps (input, intermediate, output) stay in a 1 MiB L2: one padded map of
  // at most 34 x 34 x 64 floats (296 KiB). Measured, 3 (2) blocks in one call against the conv2d
  // calls, batch 64, 1 / 2 threads: 32x32 16 -> 16 -> 16 1.8x / 2.1x, 16 -> 8 -> 16 1.9x / 2.5x,
  // 64 -> 64 -> 64 1.25x / 1.28x, 64 -> 16 -> 64 1.5x / 1.65x; but 64x64 64 -> 64 -> 64 (batch 16)
  // 1.11x / 0.78x, memory-bound, and 8x8 64 -> 64 -> 64 about 0.95x (not preferred standalone).
  const auto chains = [](const Conv2dShape& s) {
    const std::int64_t map_floats = (s.h + 2) * (s.w + 2) * round_up(std::max(s.c_in, s.c_out), kVec);
    return winograd_channels_last_preferred(s) ||
           (winograd_channels_last_applies(s) && winograd_tiles_pay(s) && s.out_h() * s.out_w() >= 1024 &&
            map_floats <= 34 * 34 * 64);
  };
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  return chains(s1) && chains(s2) && same_padding_3x3(s1) &&
         same_padding_3x3(s2) && s2.n == s1.n && s2.c_in == s1.c_out && s2.c_out == s1.c_in && s2.h == s1.h &&
         s2.w == s1.w && s1.n >= 2 * threads;
}

void conv2d_residual_chain_winograd_channels_last(std::int64_t blocks, const Conv2dShape* s1, const Conv2dShape* s2,
                                                  const float* x, const float* const* w1, const float* const* b1,
                                                  const float* const* w2, const float* const* b2, float* y) {
  if (blocks == 0 || s1[0].n == 0) return;
  std::vector<Layout> L1, L2;
  std::vector<std::int64_t> u_at{0};  // block b's U1 at u_at[2 b], U2 at u_at[2 b + 1]
  std::int64_t mid_floats = 0;        // the widest intermediate, padded
  for (std::int64_t b = 0; b < blocks; ++b) {
    L1.emplace_back(s1[b]);
    L2.emplace_back(s2[b]);
    u_at.push_back(u_at.back() + kPos * s1[b].c_in * L1[b].os);
    u_at.push_back(u_at.back() + kPos * s2[b].c_in * L2[b].os);
    mid_floats = std::max(mid_floats, L2[b].hp * L2[b].wp * L2[b].cs);
  }
  float* scratch = t_u.get(u_at.back());  // U of the filters the cache does not keep
  FilterHold hold;
  std::vector<const float*> us(static_cast<std::size_t>(2 * blocks));  // block b's U1, U2 at 2 b, 2 b + 1
  for (std::int64_t b = 0; b < blocks; ++b) {
    us[static_cast<std::size_t>(2 * b)] = cached_weights(s1[b], L1[b], w1[b], scratch + u_at[2 * b], hold);
    us[static_cast<std::size_t>(2 * b + 1)] = cached_weights(s2[b], L2[b], w2[b], scratch + u_at[2 * b + 1], hold);
  }
  const auto u = [&](std::int64_t conv) { return us[static_cast<std::size_t>(conv)]; };
  float* biases = t_chain_biases.get(2 * blocks * kWinogradChannelsLastMaxChannels);  // zero past c_out
  std::fill_n(biases, 2 * blocks * kWinogradChannelsLastMaxChannels, 0.0f);
  for (std::int64_t b = 0; b < blocks; ++b) {
    if (b1[b]) std::copy_n(b1[b], s1[b].c_out, biases + 2 * b * kWinogradChannelsLastMaxChannels);
    if (b2[b]) std::copy_n(b2[b], s2[b].c_out, biases + (2 * b + 1) * kWinogradChannelsLastMaxChannels);
  }
  const auto bias = [&](std::int64_t conv) { return biases + conv * kWinogradChannelsLastMaxChannels; };
  ConvEpilogue relu;  // the last convolution's store: its residual is added in the output transform
  relu.activate = true;
  relu.activation = UnaryOp::Relu;
  const std::int64_t stream_floats = L1[0].hp * L1[0].wp * L1[0].cs;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  // Whole images (residual_pair_fuses asks for two a thread): an image's maps stay in this
  // thread's caches from the first convolution to the last.
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (std::int64_t img = 0; img < s1[0].n; ++img) {
    float* p = t_padded.get(2 * stream_floats + mid_floats);  // the block's input (its shortcut)
    float* next = p + stream_floats;                          // the block's output
    float* q = next + stream_floats;                          // the intermediate
    pad_image(s1[0], L1[0], x + img * s1[0].c_in * s1[0].h * s1[0].w, p);
    for (std::int64_t b = 0; b < blocks; ++b) {
      conv_into_padded(s1[b], L1[b], p, u(2 * b), bias(2 * b), nullptr, q);
      if (b + 1 < blocks) {
        conv_into_padded(s2[b], L2[b], q, u(2 * b + 1), bias(2 * b + 1), p, next);
        std::swap(p, next);
      } else {
        run_band(s2[b], L2[b], q, u(2 * b + 1), bias(2 * b + 1), relu, img, 0, L2[b].th, y, p);
      }
    }
  }
}

bool winograd_channels_last_applies(const Conv2dShape& s) {
  return winograd_applies(s) && s.c_in <= kWinogradChannelsLastMaxChannels && s.c_out <= kWinogradChannelsLastMaxChannels;
}

bool winograd_channels_last_preferred(const Conv2dShape& s) {
  if (!winograd_channels_last_applies(s) || !winograd_tiles_fill(s)) return false;
  // Too few tiles for the batched kernel (1 image of 8x8, up to 7 of 4x4): this kernel, its U
  // kept across calls (filter_cache.h), beats the direct one where U is small (1 thread, 1 image,
  // ms: 8x8 32 -> 32 0.007 / 0.022, 8 -> 8 0.001 / 0.003; 4x4 16 -> 16 0.002 / 0.008). From 64 x 64
  // channel pairs U (590 KB) is 4x the weights the direct kernel reads: alone it still won (8x8
  // 64 -> 64 0.028 / 0.059), but ResNet-56 at batch 1, 18 such layers, ran 2.2 -> 2.5 ms, their
  // U read from memory. A call that must transform its filters (weights changed since the last,
  // as in training at batch 1) pays that transform too.
  if (!winograd_tiles_pay(s)) return s.c_in >= 4 && s.c_out >= 4 && s.c_in * s.c_out <= 32 * 32;
  // Measured (batch 64, 2 threads; the next best kernel in brackets): on maps up to 16x16 from 4
  // channels in and 8 out (16x16: 4 -> 8 1.02x [direct], 8 -> 8 1.53x [direct], 16 -> 16 1.9x,
  // 32 -> 32 1.37x, 64 -> 32 1.30x [batched]; 8x8: 16 -> 64 1.40x, 64 -> 16 1.64x [batched])
  // or 12 in and 4 out (16 -> 4 1.11x; 8 -> 4 0.95x [direct]), up to 64 x 32 channel pairs
  // (64 -> 64: 8x8 0.94x, 16x16 1.04x [batched]); on larger maps, where the batched Winograd's
  // vectors of tiles fill up, only at 5-8 outputs from 8 inputs (32x32: 8 -> 8 1.42x, 16 -> 8
  // 1.30x [batched]; 8 -> 4 0.86x [direct], 8 -> 16 1.00x, 16 -> 16 0.90x, 32 -> 32 0.77x
  // [batched]; its cost is the same for 5-8 outputs, the direct kernel's grows with them).
  const std::int64_t pixels = s.out_h() * s.out_w();
  if (pixels >= 1024) return s.c_in >= 8 && s.c_out > 4 && s.c_out <= 8;
  if (s.c_in * s.c_out >= 64 * 64) return false;
  return (s.c_in >= 4 && s.c_out >= 8) || (s.c_in >= 12 && s.c_out >= 4);
}

void conv2d_forward_winograd_channels_last(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                                           float* y, const ConvEpilogue& post) {
  if (s.n == 0 || s.c_out == 0) return;
  const Layout L(s);
  FilterHold hold;
  const float* u = cached_weights(s, L, w, t_u.get(kPos * s.c_in * L.os), hold);
  alignas(32) float bias_lanes[kWinogradChannelsLastMaxChannels] = {};  // 256 bytes
  if (bias) std::copy_n(bias, s.c_out, bias_lanes);
  // Items: whole images when there are enough, else bands of tile rows.
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const std::int64_t parts = s.n >= 2 * threads ? 1 : std::min(L.th, ceil_div(2 * threads, s.n));
  const std::int64_t items = s.n * parts;
  const bool parallel = threads > 1 && items > 1 && s.n * s.c_out * s.c_in * 9 * L.oh * L.ow > kConvParallelWork;
#pragma omp parallel for schedule(static) num_threads(threads) if (parallel)
  for (std::int64_t item = 0; item < items; ++item) {
    const std::int64_t img = item / parts, part = item % parts;
    float* p = t_padded.get(L.hp * L.wp * L.cs);
    pad_image(s, L, x + img * s.c_in * s.h * s.w, p);
    run_band(s, L, p, u, bias_lanes, post, img, L.th * part / parts, L.th * (part + 1) / parts, y);
  }
}

}  // namespace shrink::kernels::cpu
