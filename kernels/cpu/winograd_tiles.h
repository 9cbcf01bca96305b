// The tiles shared by the Winograd F(4x4, 3x3) convolutions (conv_winograd.h): transform
// matrices, how a batch is cut into tiles and read from a phase-split padded copy, and the
// input transform. Internal to kernels/cpu (conv_winograd.cpp: forward; conv_winograd_weight.cpp:
// weight gradient).
//
//   B^T = [4  0 -5  0 1 0]   G = [ 1/4     0    0 ]   A^T = [1 1  1 1  1 0]
//         [0 -4 -4  1 1 0]       [-1/6 -1/6 -1/6 ]         [0 1 -1 2 -2 0]
//         [0  4 -4 -1 1 0]       [-1/6  1/6 -1/6 ]         [0 1  1 4  4 0]
//         [0 -2 -1  2 1 0]       [1/24 1/12  1/6 ]         [0 1 -1 8 -8 1]
//         [0  2 -1 -2 1 0]       [1/24 -1/12 1/6 ]
//         [0  4  0 -5 0 1]       [ 0     0     1 ]
// (interpolation points 0, 1, -1, 2, -2 and infinity; Lavin & Gray 2016, eq. 8-10).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/gemm_detail.h"
#include "kernels/cpu/simd_transpose.h"
#include "kernels/kernel_types.h"
#include "kernels/cpu/tiling.h"

namespace shrink::kernels::cpu::winograd {

using gemm_detail::kKC;
using gemm_detail::kMR;
using gemm_detail::kNR;

constexpr std::int64_t kTile = 4;               // output tile edge
constexpr std::int64_t kAlpha = 6;              // input tile edge: kTile + 3 - 1
constexpr std::int64_t kPos = kAlpha * kAlpha;  // element-wise products per tile
constexpr std::int64_t kLanes = 8;              // tiles per vector
// V and M of one chunk of tiles should stay in L2 (512 KiB a core here) between the
// transforms and the products that read them.
constexpr std::int64_t kChunkBytes = 448 * 1024;

// B^T d for one column (or row) of six vectors.
inline void input_1d(const __m256 d[kAlpha], __m256 o[kAlpha]) {
  const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f);
  const __m256 s12 = _mm256_add_ps(d[1], d[2]), d12 = _mm256_sub_ps(d[1], d[2]);
  const __m256 d31 = _mm256_sub_ps(d[3], d[1]), d42 = _mm256_sub_ps(d[4], d[2]);
  o[0] = _mm256_fmadd_ps(four, d[0], _mm256_fnmadd_ps(five, d[2], d[4]));  // 4 d0 - 5 d2 + d4
  o[1] = _mm256_fnmadd_ps(four, s12, _mm256_add_ps(d[3], d[4]));           // -4 (d1 + d2) + d3 + d4
  o[2] = _mm256_fmadd_ps(four, d12, _mm256_sub_ps(d[4], d[3]));            // 4 (d1 - d2) - d3 + d4
  o[3] = _mm256_fmadd_ps(two, d31, d42);                                    // 2 (d3 - d1) + d4 - d2
  o[4] = _mm256_fnmadd_ps(two, d31, d42);                                   // 2 (d1 - d3) + d4 - d2
  o[5] = _mm256_fmadd_ps(four, d[1], _mm256_fnmadd_ps(five, d[3], d[5]));  // 4 d1 - 5 d3 + d5
}

// A^T m for one column (or row) of six vectors.
inline void output_1d(const __m256 m[kAlpha], __m256 y[kTile]) {
  const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f), eight = _mm256_set1_ps(8.0f);
  const __m256 s12 = _mm256_add_ps(m[1], m[2]), d12 = _mm256_sub_ps(m[1], m[2]);
  const __m256 s34 = _mm256_add_ps(m[3], m[4]), d34 = _mm256_sub_ps(m[3], m[4]);
  y[0] = _mm256_add_ps(_mm256_add_ps(m[0], s12), s34);
  y[1] = _mm256_fmadd_ps(two, d34, d12);
  y[2] = _mm256_fmadd_ps(four, s34, s12);
  y[3] = _mm256_add_ps(_mm256_fmadd_ps(eight, d34, d12), m[5]);
}

// G g for one column (or row) of three vectors.
inline void weight_1d(const __m256 g[3], __m256 o[kAlpha]) {
  const __m256 quarter = _mm256_set1_ps(0.25f), sixth = _mm256_set1_ps(1.0f / 6);
  const __m256 g02 = _mm256_add_ps(g[0], g[2]);
  const __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 24), g[0], _mm256_mul_ps(sixth, g[2]));  // g0/24 + g2/6
  const __m256 h = _mm256_mul_ps(_mm256_set1_ps(1.0f / 12), g[1]);
  o[0] = _mm256_mul_ps(quarter, g[0]);
  o[1] = _mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), sixth), _mm256_add_ps(g02, g[1]));
  o[2] = _mm256_mul_ps(sixth, _mm256_sub_ps(g[1], g02));
  o[3] = _mm256_add_ps(p, h);
  o[4] = _mm256_sub_ps(p, h);
  o[5] = g[2];
}

// The 9 taps of 8 filters 3x3, filter l's 9 floats at g + l stride: taps[e] holds tap e (row-major
// in the filter) of filter l in lane l. Lanes at or past `lanes` are zero, their filters never
// read. Eight plain loads and a register transpose, where the weight transforms used to gather
// (vgatherdps is microcoded on AMD Zen: the gathers were most of the transforms' time, 5% of a
// ResNet-18 batch at 1 thread).
inline void load_filters(const float* g, std::int64_t stride, std::int64_t lanes, __m256 taps[9]) {
  float last[kLanes];  // tap 8: inserted lane by lane (a vector load of scalars just stored would
                       // wait for the stores to retire: store forwarding fails)
  for (std::int64_t l = 0; l < kLanes; ++l) {
    taps[l] = l < lanes ? _mm256_loadu_ps(g + l * stride) : _mm256_setzero_ps();  // taps 0-7
    last[l] = l < lanes ? g[l * stride + 8] : 0.0f;
  }
  transpose8(taps);
  taps[8] = _mm256_setr_ps(last[0], last[1], last[2], last[3], last[4], last[5], last[6], last[7]);
}

// G g G^T for 8 filters at once (taps as load_filters gives them): store(pos, vector) for each of
// the 36 positions, pos = 6 i + l. Both Winograd kernels' filter transforms.
template <class Store>
inline void transform_filters(const __m256 taps[9], Store&& store) {
  __m256 t[kAlpha][3];  // G g, column by column
  for (int q = 0; q < 3; ++q) {
    const __m256 col[3] = {taps[q], taps[3 + q], taps[6 + q]};
    __m256 out[kAlpha];
    weight_1d(col, out);
    for (int i = 0; i < kAlpha; ++i) t[i][q] = out[i];
  }
  for (int i = 0; i < kAlpha; ++i) {
    __m256 out[kAlpha];
    weight_1d(t[i], out);  // (G g) G^T: the same transform along the row
    for (int l = 0; l < kAlpha; ++l) store(i * kAlpha + l, out[l]);
  }
}

// A y for one column (or row) of four vectors: the transpose of the output transform, which
// carries dy's 4x4 tile back to the 6x6 products (dM = A dY A^T).
inline void grad_1d(const __m256 y[kTile], __m256 m[kAlpha]) {
  const __m256 s02 = _mm256_add_ps(y[0], y[2]), s13 = _mm256_add_ps(y[1], y[3]);
  const __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), y[2], y[0]);                               // y0 + 4 y2
  const __m256 r = _mm256_mul_ps(_mm256_set1_ps(2.0f), _mm256_fmadd_ps(_mm256_set1_ps(4.0f), y[3], y[1]));  // 2 y1 + 8 y3
  m[0] = y[0];
  m[1] = _mm256_add_ps(s02, s13);
  m[2] = _mm256_sub_ps(s02, s13);
  m[3] = _mm256_add_ps(p, r);
  m[4] = _mm256_sub_ps(p, r);
  m[5] = y[3];
}

// G^T x for one column (or row) of six vectors: the transpose of the weight transform, which
// carries the products' gradient dU back to the 3x3 filter (dg = G^T dU G).
inline void weight_grad_1d(const __m256 x[kAlpha], __m256 o[3]) {
  const __m256 sixth = _mm256_set1_ps(1.0f / 6), s12 = _mm256_add_ps(x[1], x[2]), d21 = _mm256_sub_ps(x[2], x[1]);
  const __m256 s34 = _mm256_add_ps(x[3], x[4]), d34 = _mm256_sub_ps(x[3], x[4]);
  // G^T rows: [1/4 -1/6 -1/6 1/24 1/24 0], [0 -1/6 1/6 1/12 -1/12 0], [0 -1/6 -1/6 1/6 1/6 1]
  o[0] = _mm256_fmadd_ps(_mm256_set1_ps(0.25f), x[0],
                         _mm256_fmadd_ps(_mm256_set1_ps(1.0f / 24), s34, _mm256_mul_ps(_mm256_set1_ps(-1.0f / 6), s12)));
  o[1] = _mm256_fmadd_ps(sixth, d21, _mm256_mul_ps(_mm256_set1_ps(1.0f / 12), d34));
  o[2] = _mm256_add_ps(_mm256_mul_ps(sixth, _mm256_sub_ps(s34, s12)), x[5]);
}

// The geometry of one call. Tiles are numbered over the batch, t = (img th + ty) tw + tx, and
// processed in chunks of consecutive numbers, so small feature maps fill whole vectors and
// B panels with tiles of several rows and images. The padded copy splits every image's
// columns by phase modulo 4: padded column u of row r of channel c sits at
// ((c 4 + u % 4) hp + r) wq + u / 4, so element (i, j) of tile (ty, tx) is at
// tile_base + ((c 4 + j % 4) hp + i) wq + j / 4 with tile_base = 4 ty wq + tx, and the
// elements of 8 tiles side by side in a tile row are 8 consecutive floats.
struct Geometry {
  std::int64_t oh, ow, th, tw, per_image, tiles;  // output size, tiles a column, a row, an image, the batch
  std::int64_t hp, wq, image;                     // padded rows, positions per phase row, floats per image
  // `channels`: planes per image of the padded copies (c_in; the weight gradient keeps dy's
  // c_out planes in copies of the same geometry, so both share tile bases).
  Geometry(const Conv2dShape& s, std::int64_t channels)
      : oh(s.out_h()), ow(s.out_w()), th(ceil_div(oh, kTile)), tw(ceil_div(ow, kTile)), per_image(th * tw),
        tiles(s.n * per_image), hp(kTile * th + 2), wq(tw + 1), image(channels * kTile * hp * wq) {}
  std::int64_t plane() const { return hp * wq; }  // one phase of one channel
  // Tile t's corner in a padded copy that starts at image `first_image`.
  std::int64_t tile_base(std::int64_t t, std::int64_t first_image) const {
    const std::int64_t img = t / per_image, r = t % per_image;
    return (img - first_image) * image + kTile * (r / tw) * wq + r % tw;
  }
};

// Channel c of one image, padded and split into its 4 column phases: 32 padded columns
// (8 positions) at a time by four masked loads straight from the input row and an 8 x 4
// transpose, column block by column block (masks made once per block); a row's last <= 3
// positions are written one float at a time (winograd_tiles.cpp says why).
void pad_channel(const Conv2dShape& s, const Geometry& g, const float* x, std::int64_t c, float* dst);

// Where one vector of 8 consecutive tiles reads: the first tile's base and, unless the 8 sit
// side by side in one tile row (then loads are contiguous), each lane's offset from it. Lanes
// past the chunk's last tile repeat it: their products are computed and never stored.
struct Group {
  std::int64_t base;
  __m256i rel;
  bool contiguous;
};

// Rows [0, Rows) of one tile column of the group's 8 tiles (`col`: row 0 of the first tile;
// rows wq floats apart): contiguous loads when the tiles sit side by side, else gathers.
template <int Rows>
inline void load_column(const Group& grp, const float* col, std::int64_t wq, __m256 (&d)[Rows]) {
  if (grp.contiguous)
    for (int i = 0; i < Rows; ++i) d[i] = _mm256_loadu_ps(col + i * wq);
  else
    for (int i = 0; i < Rows; ++i) d[i] = _mm256_i32gather_ps(col + i * wq, grp.rel, 4);
}

// One chunk of tiles [begin, begin + count) of a block of images that starts at first_image,
// and its scratch.
struct Chunk {
  std::int64_t begin, count, lanes;  // lanes: count rounded up to whole B panels
  // Floats from one position's V (M) to the next: one cache line more than the data, so that
  // the 36 positions of a tile, written (read) together, do not share L1 sets at 4 KiB strides.
  std::int64_t v_pos, m_pos;
  float *v, *m;
  std::vector<Group> groups;
  Chunk(const Geometry& g, const Conv2dShape& s, std::int64_t first_image, std::int64_t b, std::int64_t n, float* v_,
        float* m_);
};

// Where transform_input writes V: element (pos, channel c, tile column 8 q + lane) at
// v + pos * pos_stride + q / 2 * pair + q % 2 * 8 + (c - c0) * channel + lane. The forward
// writes B panels of its k block (pair = kc kNR, channel = kNR: panel jp = q / 2 holds
// columns 16 jp ..); the weight gradient writes plain rows (pair = 16, channel = row length).
struct VLayout {
  float* v;
  std::int64_t pos_stride, pair, channel;
};

// V[pos] = B^T d B for channels [ca, cb) (of the k block that starts at c0) of the chunk's tiles.
void transform_input(const Geometry& g, const float* images, const Chunk& ch, std::int64_t c0, const VLayout& out,
                     std::int64_t ca, std::int64_t cb);

}  // namespace shrink::kernels::cpu::winograd
