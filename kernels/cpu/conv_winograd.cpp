// Winograd F(4x4, 3x3) forward convolution (kernels/cpu/conv_winograd.h).
//
//   B^T = [4  0 -5  0 1 0]   G = [ 1/4     0    0 ]   A^T = [1 1  1 1  1 0]
//         [0 -4 -4  1 1 0]       [-1/6 -1/6 -1/6 ]         [0 1 -1 2 -2 0]
//         [0  4 -4 -1 1 0]       [-1/6  1/6 -1/6 ]         [0 1  1 4  4 0]
//         [0 -2 -1  2 1 0]       [1/24 1/12  1/6 ]         [0 1 -1 8 -8 1]
//         [0  2 -1 -2 1 0]       [1/24 -1/12 1/6 ]
//         [0  4  0 -5 0 1]       [ 0     0     1 ]
// (interpolation points 0, 1, -1, 2, -2 and infinity; Lavin & Gray 2016, eq. 8-10).
#include "kernels/cpu/conv_winograd.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_detail.h"

namespace shrink::kernels::cpu {
namespace {

using namespace gemm_detail;

constexpr std::int64_t kTile = 4;               // output tile edge
constexpr std::int64_t kAlpha = 6;              // input tile edge: kTile + 3 - 1
constexpr std::int64_t kPos = kAlpha * kAlpha;  // element-wise products per tile
constexpr std::int64_t kLanes = 8;              // tiles per vector
// V and M of one chunk of tiles should stay in L2 (512 KiB a core here) between the
// transforms and the products that read them.
constexpr std::int64_t kChunkBytes = 448 * 1024;

constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
constexpr std::int64_t round_up(std::int64_t a, std::int64_t b) { return ceil_div(a, b) * b; }

thread_local AlignedBuffer t_u;       // U as A panels (calling thread)
thread_local AlignedBuffer t_u_rows;  // U[pos][o][c] before packing (calling thread)
thread_local AlignedBuffer t_images;  // the padded, phase-split images of one block (each worker)
thread_local AlignedBuffer t_v;       // V of one chunk as B panels (each worker)
thread_local AlignedBuffer t_m;       // M = U V of one chunk (each worker)

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

// U[pos][o][c] = (G g G^T)[pos] for the filters g = w[o, c] of output channels [o0, o1),
// eight input channels at a time (lanes), then packed as A panels by position and k block.
void transform_weights(const Conv2dShape& s, const float* w, std::int64_t o0, std::int64_t o1, float* u) {
  const __m256i stride9 = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
  for (std::int64_t o = o0; o < o1; ++o)
    for (std::int64_t c = 0; c < s.c_in; c += kLanes) {
      const std::int64_t lanes = std::min(kLanes, s.c_in - c);
      const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(lanes)),
                                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      const float* g = w + (o * s.c_in + c) * 9;
      __m256 rows[3][3];  // rows[r][q] = g[r][q] of 8 filters
      for (int e = 0; e < 9; ++e)
        rows[e / 3][e % 3] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), g + e, stride9,
                                                      _mm256_castsi256_ps(live), 4);
      __m256 t[kAlpha][3];  // G g, column by column
      for (int q = 0; q < 3; ++q) {
        const __m256 col[3] = {rows[0][q], rows[1][q], rows[2][q]};
        __m256 out[kAlpha];
        weight_1d(col, out);
        for (int i = 0; i < kAlpha; ++i) t[i][q] = out[i];
      }
      for (int i = 0; i < kAlpha; ++i) {
        __m256 out[kAlpha];
        weight_1d(t[i], out);  // (G g) G^T: the same transform along the row
        for (int l = 0; l < kAlpha; ++l)
          _mm256_maskstore_ps(u + ((i * kAlpha + l) * s.c_out + o) * s.c_in + c, live, out[l]);
      }
    }
}

// Channel c of one image, padded and split into its 4 column phases, 32 padded columns
// (8 positions) at a time: four masked loads straight from the input row (lanes that fall in
// the padding read nothing and hold zero), then an 8 x 4 transpose of (position, phase) pairs.
void pad_channel(const Conv2dShape& s, const Geometry& g, const float* x, std::int64_t c, float* dst) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i width = _mm256_set1_epi32(static_cast<int>(s.w));
  for (std::int64_t r = 0; r < g.hp; ++r) {
    float* out[kTile];
    for (std::int64_t phase = 0; phase < kTile; ++phase) out[phase] = dst + ((c * kTile + phase) * g.hp + r) * g.wq;
    const std::int64_t i = r - s.pad_h;
    if (i < 0 || i >= s.h) {
      for (float* o : out) std::fill_n(o, g.wq, 0.0f);
      continue;
    }
    const float* src = x + (c * s.h + i) * s.w;
    for (std::int64_t q = 0; q < g.wq; q += kLanes) {
      __m256 v[4];  // padded columns 4q + 8k .. + 7, input columns 4q + 8k - pad_w ..
      for (int k = 0; k < 4; ++k) {
        const std::int64_t j0 = kTile * q + 8 * k - s.pad_w;
        const __m256i j = _mm256_add_epi32(lane, _mm256_set1_epi32(static_cast<int>(j0)));
        const __m256i live = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), j),
                                                 _mm256_cmpgt_epi32(width, j));  // 0 <= j < w
        v[k] = _mm256_maskload_ps(src + j0, live);
      }
      const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
      const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
      const __m256 phases[kTile] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                                    _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
      if (q + kLanes <= g.wq) {
        for (std::int64_t phase = 0; phase < kTile; ++phase)
          _mm256_storeu_ps(out[phase] + q, _mm256_permutevar8x32_ps(phases[phase], order));
      } else {  // the row's last positions: the next row follows in memory
        const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(g.wq - q)), lane);
        for (std::int64_t phase = 0; phase < kTile; ++phase)
          _mm256_maskstore_ps(out[phase] + q, keep, _mm256_permutevar8x32_ps(phases[phase], order));
      }
    }
  }
}

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
  std::vector<std::int64_t> y_offset, row, col;  // per tile: its top-left output in y (channel 0), row, column
  Chunk(const Geometry& g, const Conv2dShape& s, std::int64_t first_image, std::int64_t b, std::int64_t n, float* v_,
        float* m_)
      : begin(b), count(n), lanes(round_up(n, kNR)), v_pos(lanes * std::min(kKC, s.c_in) + kNR),
        m_pos(lanes * round_up(s.c_out, kMR) + kNR), v(v_), m(m_) {
    const std::int64_t last = begin + count - 1;
    for (std::int64_t q = 0; q < lanes / kLanes; ++q) {
      alignas(32) int rel[kLanes];
      const std::int64_t first = g.tile_base(std::min(begin + q * kLanes, last), first_image);
      for (std::int64_t l = 0; l < kLanes; ++l)
        rel[l] = static_cast<int>(g.tile_base(std::min(begin + q * kLanes + l, last), first_image) - first);
      bool contiguous = true;
      for (std::int64_t l = 0; l < kLanes; ++l) contiguous = contiguous && rel[l] == l;
      groups.push_back({first, _mm256_load_si256(reinterpret_cast<const __m256i*>(rel)), contiguous});
    }
    for (std::int64_t t = begin; t <= last; ++t) {
      const std::int64_t img = t / g.per_image, r = t % g.per_image;
      row.push_back(kTile * (r / g.tw));
      col.push_back(kTile * (r % g.tw));
      y_offset.push_back(img * s.c_out * g.oh * g.ow + row.back() * g.ow + col.back());
    }
  }
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
                     std::int64_t ca, std::int64_t cb) {
  for (std::int64_t c = ca; c < cb; ++c)
    for (std::size_t q = 0; q < ch.groups.size(); ++q) {
      const Group& grp = ch.groups[q];
      __m256 t[kAlpha][kAlpha];  // B^T d, column by column
      for (int j = 0; j < kAlpha; ++j) {
        __m256 d[kAlpha];
        load_column(grp, images + grp.base + (c * kTile + j % kTile) * g.plane() + j / kTile, g.wq, d);
        __m256 o[kAlpha];
        input_1d(d, o);
        for (int i = 0; i < kAlpha; ++i) t[i][j] = o[i];
      }
      float* dst = out.v + static_cast<std::int64_t>(q) / 2 * out.pair + static_cast<std::int64_t>(q) % 2 * kLanes +
                   (c - c0) * out.channel;
      for (int i = 0; i < kAlpha; ++i) {
        __m256 o[kAlpha];
        input_1d(t[i], o);  // (B^T d) B: the same transform along the row
        for (int l = 0; l < kAlpha; ++l) _mm256_store_ps(dst + (i * kAlpha + l) * out.pos_stride, o[l]);
      }
    }
}

// M[pos] (+)= U[pos] V[pos] for positions [p0, p1): M[pos][o][column] at
// pos m_pos + o lanes + column, m_pad rows a position: the A panels' zero rows past c_out make every tile a full 6 x 16
// micro-kernel call (the edge path is scalar).
void multiply(const Conv2dShape& s, const float* upack, const Chunk& ch, std::int64_t c0, std::int64_t kc,
              std::int64_t p0, std::int64_t p1) {
  const std::int64_t panels = ch.lanes / kNR, m_pad = round_up(s.c_out, kMR);
  const float beta = c0 == 0 ? 0.0f : 1.0f;
  for (std::int64_t pos = p0; pos < p1; ++pos)
    for (std::int64_t jp = 0; jp < panels; ++jp)
      for (std::int64_t ip = 0; ip < s.c_out; ip += kMR)
        multiply_panels(kc, upack + (pos * s.c_in + c0) * m_pad + ip * kc, ch.v + pos * ch.v_pos + jp * kc * kNR,
                        ch.m + pos * ch.m_pos + ip * ch.lanes + jp * kNR, ch.lanes, kMR, kNR, beta);
}

// y = A^T M A + bias for output channels [o0, o1) of the chunk's tiles.
void transform_output(const Geometry& g, const Chunk& ch, const float* bias, std::int64_t o0,
                      std::int64_t o1, float* y) {
  for (std::int64_t o = o0; o < o1; ++o) {
    const __m256 add = _mm256_set1_ps(bias ? bias[o] : 0.0f);
    for (std::int64_t q = 0; q * kLanes < ch.count; ++q) {
      __m256 t[kTile][kAlpha];  // A^T M, column by column
      for (int j = 0; j < kAlpha; ++j) {
        __m256 col[kAlpha];
        for (int i = 0; i < kAlpha; ++i)
          col[i] = _mm256_load_ps(ch.m + (i * kAlpha + j) * ch.m_pos + o * ch.lanes + q * kLanes);
        __m256 r[kTile];
        output_1d(col, r);
        for (int i = 0; i < kTile; ++i) t[i][j] = r[i];
      }
      const std::int64_t first = q * kLanes, lanes = std::min(kLanes, ch.count - first);
      const bool row_run = ch.groups[static_cast<std::size_t>(q)].contiguous &&
                           ch.col[static_cast<std::size_t>(first)] + kTile * kLanes <= g.ow;
      for (int i = 0; i < kTile; ++i) {
        __m256 r[kTile];
        output_1d(t[i], r);
        for (int k = 0; k < kTile; ++k) r[k] = _mm256_add_ps(r[k], add);
        // Transpose 4 vectors of 8 lanes into 8 rows of 4: lane l's row is half l / 4 of lo_hi[l % 4].
        const __m256 a0 = _mm256_unpacklo_ps(r[0], r[1]), a1 = _mm256_unpackhi_ps(r[0], r[1]);
        const __m256 b0 = _mm256_unpacklo_ps(r[2], r[3]), b1 = _mm256_unpackhi_ps(r[2], r[3]);
        const __m256 lo_hi[4] = {_mm256_shuffle_ps(a0, b0, 0x44), _mm256_shuffle_ps(a0, b0, 0xEE),
                                 _mm256_shuffle_ps(a1, b1, 0x44), _mm256_shuffle_ps(a1, b1, 0xEE)};
        const auto head = static_cast<std::size_t>(first);
        if (row_run) {  // 8 whole tiles side by side: 32 consecutive outputs of the row
          if (ch.row[head] + i >= g.oh) break;
          float* dst = y + ch.y_offset[head] + o * g.oh * g.ow + i * g.ow;
          _mm256_storeu_ps(dst, _mm256_permute2f128_ps(lo_hi[0], lo_hi[1], 0x20));
          _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(lo_hi[2], lo_hi[3], 0x20));
          _mm256_storeu_ps(dst + 16, _mm256_permute2f128_ps(lo_hi[0], lo_hi[1], 0x31));
          _mm256_storeu_ps(dst + 24, _mm256_permute2f128_ps(lo_hi[2], lo_hi[3], 0x31));
          continue;
        }
        for (std::int64_t l = 0; l < lanes; ++l) {
          const std::size_t tile = head + static_cast<std::size_t>(l);
          const std::int64_t row = ch.row[tile] + i, col = ch.col[tile];
          if (row >= g.oh) continue;
          const __m128 v = l < 4 ? _mm256_castps256_ps128(lo_hi[l]) : _mm256_extractf128_ps(lo_hi[l - 4], 1);
          float* dst = y + ch.y_offset[tile] + o * g.oh * g.ow + i * g.ow;
          if (col + kTile <= g.ow) {
            _mm_storeu_ps(dst, v);
          } else {
            alignas(16) float part[kTile];
            _mm_store_ps(part, v);
            for (std::int64_t k = 0; col + k < g.ow; ++k) dst[k] = part[k];
          }
        }
      }
    }
  }
}

// All of a chunk: V, M and y, k block by k block. `split` shares each step among the team
// (few chunks); otherwise the caller runs chunks on separate threads.
void run_chunk(const Conv2dShape& s, const Geometry& g, const float* images, const float* upack, const Chunk& ch,
               const float* bias, float* y, bool split) {
  for (std::int64_t c0 = 0; c0 < s.c_in; c0 += kKC) {
    const std::int64_t kc = std::min(kKC, s.c_in - c0);
    const VLayout panels{ch.v, ch.v_pos, kc * kNR, kNR};
#pragma omp parallel for schedule(static) if (split)
    for (std::int64_t c = c0; c < c0 + kc; ++c) transform_input(g, images, ch, c0, panels, c, c + 1);
#pragma omp parallel for schedule(static) if (split)
    for (std::int64_t pos = 0; pos < kPos; ++pos) multiply(s, upack, ch, c0, kc, pos, pos + 1);
  }
#pragma omp parallel for schedule(static) if (split)
  for (std::int64_t o = 0; o < s.c_out; ++o) transform_output(g, ch, bias, o, o + 1, y);
}

// How a call is cut: blocks of `images` whole images (padded together, by the thread that
// runs the block, so their copy is still in its cache when the transforms read it), each in
// chunks of at most about `chunk` tiles.
struct Plan {
  std::int64_t images, blocks, chunk;
  bool split;  // fewer blocks than threads: the team shares each block's steps
  Plan(const Conv2dShape& s, const Geometry& g, int threads) {
    const std::int64_t per_tile = kPos * (std::min(kKC, s.c_in) + round_up(s.c_out, kMR)) * std::int64_t{sizeof(float)};
    chunk = std::clamp<std::int64_t>(kChunkBytes / per_tile / kNR * kNR, 2 * kNR, 64 * kNR);
    images = std::clamp<std::int64_t>((chunk + g.per_image / 2) / g.per_image, 1, s.n);
    blocks = ceil_div(s.n, images);
    split = threads > 1 && blocks < threads;
  }
  // Chunks of block b: about `chunk` tiles each, of equal size rounded up to whole B panels.
  std::int64_t chunk_size(std::int64_t block_tiles) const {
    const std::int64_t count = std::max<std::int64_t>(1, (block_tiles + chunk / 2) / chunk);
    return round_up(ceil_div(block_tiles, count), kNR);
  }
};

void run_block(const Conv2dShape& s, const Geometry& g, const Plan& plan, const float* x, const float* upack,
               std::int64_t b, const float* bias, float* y, bool split) {
  const std::int64_t img0 = b * plan.images, img1 = std::min(s.n, img0 + plan.images);
  float* images = t_images.get((img1 - img0) * g.image);
#pragma omp parallel for schedule(static) if (split)
  for (std::int64_t ic = 0; ic < (img1 - img0) * s.c_in; ++ic) {
    const std::int64_t img = img0 + ic / s.c_in;
    pad_channel(s, g, x + img * s.c_in * s.h * s.w, ic % s.c_in, images + (img - img0) * g.image);
  }
  const std::int64_t t0 = img0 * g.per_image, t1 = img1 * g.per_image, size = plan.chunk_size(t1 - t0);
  const std::int64_t lanes = round_up(size, kNR);
  float* v = t_v.get(kPos * (lanes * std::min(kKC, s.c_in) + kNR));
  float* m = t_m.get(kPos * (lanes * round_up(s.c_out, kMR) + kNR));
  for (std::int64_t t = t0; t < t1; t += size) {
    const Chunk ch(g, s, img0, t, std::min(size, t1 - t), v, m);
    run_chunk(s, g, images, upack, ch, bias, y, split);
  }
}

// dM[pos] = A dY A^T for output channel o of the chunk's tiles: plain rows,
// dm[pos * pos_stride + o * row + column]. dy's tiles past the output's edge read zeros.
void transform_grad(const Geometry& g, const float* grads, const Chunk& ch, std::int64_t o, float* dm,
                    std::int64_t pos_stride, std::int64_t row) {
  for (std::size_t q = 0; q < ch.groups.size(); ++q) {
    const Group& grp = ch.groups[q];
    __m256 t[kAlpha][kTile];  // A dY, column by column
    for (int k = 0; k < kTile; ++k) {
      __m256 y[kTile];
      load_column(grp, grads + grp.base + (o * kTile + k) * g.plane(), g.wq, y);
      __m256 m[kAlpha];
      grad_1d(y, m);
      for (int i = 0; i < kAlpha; ++i) t[i][k] = m[i];
    }
    float* dst = dm + o * row + static_cast<std::int64_t>(q) * kLanes;
    for (int i = 0; i < kAlpha; ++i) {
      __m256 m[kAlpha];
      grad_1d(t[i], m);  // (A dY) A^T: the same transform along the row
      for (int l = 0; l < kAlpha; ++l) _mm256_store_ps(dst + (i * kAlpha + l) * pos_stride, m[l]);
    }
  }
}

// dw[o, c] = G^T dU[o, c] G for output channel o, eight input channels at a time.
void transform_weight_grad(const Conv2dShape& s, const float* du, std::int64_t o, float* dw) {
  for (std::int64_t c = 0; c < s.c_in; c += kLanes) {
    const std::int64_t lanes = std::min(kLanes, s.c_in - c);
    const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(lanes)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 t[3][kAlpha];  // G^T dU, column by column
    for (int l = 0; l < kAlpha; ++l) {
      __m256 x[kAlpha];
      for (int i = 0; i < kAlpha; ++i)
        x[i] = _mm256_maskload_ps(du + ((i * kAlpha + l) * s.c_out + o) * s.c_in + c, live);
      __m256 r[3];
      weight_grad_1d(x, r);
      for (int a = 0; a < 3; ++a) t[a][l] = r[a];
    }
    alignas(32) float out[9][kLanes];
    for (int a = 0; a < 3; ++a) {
      __m256 r[3];
      weight_grad_1d(t[a], r);  // (G^T dU) G
      for (int b = 0; b < 3; ++b) _mm256_store_ps(out[a * 3 + b], r[b]);
    }
    for (std::int64_t l = 0; l < lanes; ++l)
      for (int e = 0; e < 9; ++e) dw[(o * s.c_in + c + l) * 9 + e] = out[e][l];
  }
}

}  // namespace

bool winograd_applies(const Conv2dShape& s) {
  if (!(s.kh == 3 && s.kw == 3 && s.stride_h == 1 && s.stride_w == 1 && s.dilation_h == 1 && s.dilation_w == 1 &&
        s.groups == 1 && s.pad_h <= 2 && s.pad_w <= 2 && s.out_h() > 0 && s.out_w() > 0))
    return false;
  const Geometry g(s, std::max(s.c_in, s.c_out));
  return s.n * g.image < std::numeric_limits<int>::max();  // gather offsets are 32-bit
}

bool winograd_preferred(const Conv2dShape& s) {
  if (!winograd_applies(s) || s.c_in < 8 || s.c_out < 8) return false;
  // 36 products per tile against 9 per output pixel: worth it when partial tiles waste little.
  const Geometry g(s, s.c_in);
  return 4 * g.th * g.tw * 2 <= g.oh * g.ow;
}

bool winograd_weight_grad_preferred(const Conv2dShape& s) {
  return winograd_preferred(s) && s.c_in >= 32 && s.c_out >= 32;
}

void conv2d_forward_winograd(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                             float* y) {
  if (s.n == 0 || s.c_out == 0) return;
  const Geometry g(s, s.c_in);
  const std::int64_t cin = s.c_in, cout = s.c_out, m_pad = round_up(cout, kMR);
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  float* const u = t_u_rows.get(kPos * cout * cin);
  float* const upack = t_u.get(kPos * cin * m_pad);
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (std::int64_t o = 0; o < cout; ++o) transform_weights(s, w, o, o + 1, u);
    // U as A panels: position pos, k block c0, row panel ip at (pos cin + c0) m_pad + ip kc.
#pragma omp for schedule(static)
    for (std::int64_t pos = 0; pos < kPos; ++pos)
      for (std::int64_t c0 = 0; c0 < cin; c0 += kKC) {
        const std::int64_t kc = std::min(kKC, cin - c0);
        for (std::int64_t ip = 0; ip < cout; ip += kMR)
          pack_panel_a(u + (pos * cout + ip) * cin + c0, cin, true, std::min(kMR, cout - ip), kc, 1.0f,
                       upack + (pos * cin + c0) * m_pad + ip * kc);
      }
  }
  const Plan plan(s, g, threads);
  if (plan.split) {
    for (std::int64_t b = 0; b < plan.blocks; ++b) run_block(s, g, plan, x, upack, b, bias, y, true);
  } else {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t b = 0; b < plan.blocks; ++b) run_block(s, g, plan, x, upack, b, bias, y, false);
  }
}

// dU[pos] = sum over tiles of dM[pos] V[pos]^T, one sgemm per position with a chunk's tiles as
// k. Threads take whole blocks of images (padded, transformed and multiplied by the thread
// into its own partial dU) and add the partials in block order (omp ordered), so every element
// is summed in the same order whatever the thread count.
void conv2d_backward_weight_winograd(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const std::int64_t cin = s.c_in, cout = s.c_out, weights = kPos * cout * cin;
  if (s.n == 0) {
    std::fill_n(dw, cout * cin * 9, 0.0f);
    return;
  }
  const Geometry g(s, std::max(cin, cout));
  Conv2dShape grad_shape = s;  // dy's planes, unpadded, in the same phase-split geometry
  grad_shape.h = g.oh;
  grad_shape.w = g.ow;
  grad_shape.pad_h = grad_shape.pad_w = 0;
  // Long k for the products: chunks of up to 2 kChunkBytes of V and dM.
  const std::int64_t chunk = std::clamp<std::int64_t>(
      2 * kChunkBytes / (kPos * (cin + cout) * std::int64_t{sizeof(float)}) / kNR * kNR, 4 * kNR, 32 * kNR);
  const std::int64_t images = std::clamp<std::int64_t>((chunk + g.per_image / 2) / g.per_image, 1, s.n);
  const std::int64_t blocks = ceil_div(s.n, images);
  const std::int64_t v_pos = cin * chunk + kNR, dm_pos = cout * chunk + kNR;
  float* const du = t_u_rows.get(weights);
  const int threads = omp_in_parallel() ? 1 : static_cast<int>(std::min<std::int64_t>(omp_get_max_threads(), blocks));
#pragma omp parallel num_threads(threads)
  {
    float* const padded = t_images.get(2 * images * g.image);
    float* const grads = padded + images * g.image;
    float* const v = t_v.get(kPos * v_pos);
    float* const dm = t_m.get(kPos * dm_pos);
    float* const part = t_u.get(weights);
#pragma omp for schedule(static, 1) ordered
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t img0 = b * images, img1 = std::min(s.n, img0 + images);
      for (std::int64_t img = img0; img < img1; ++img) {
        for (std::int64_t c = 0; c < cin; ++c) pad_channel(s, g, x + img * cin * s.h * s.w, c, padded + (img - img0) * g.image);
        for (std::int64_t o = 0; o < cout; ++o)
          pad_channel(grad_shape, g, dy + img * cout * g.oh * g.ow, o, grads + (img - img0) * g.image);
      }
      const std::int64_t t1 = img1 * g.per_image;
      for (std::int64_t t = img0 * g.per_image; t < t1; t += chunk) {
        const Chunk ch(g, s, img0, t, std::min(chunk, t1 - t), nullptr, nullptr);
        transform_input(g, padded, ch, 0, VLayout{v, v_pos, 2 * kLanes, chunk}, 0, cin);
        for (std::int64_t o = 0; o < cout; ++o) transform_grad(g, grads, ch, o, dm, dm_pos, chunk);
        for (std::int64_t pos = 0; pos < kPos; ++pos)
          sgemm(false, true, cout, cin, ch.count, 1.0f, dm + pos * dm_pos, chunk, v + pos * v_pos, chunk,
                t == img0 * g.per_image ? 0.0f : 1.0f, part + pos * cout * cin, cin);
      }
#pragma omp ordered
      {
        if (b == 0) std::copy_n(part, weights, du);
        else for (std::int64_t e = 0; e < weights; ++e) du[e] += part[e];
      }
    }
#pragma omp for schedule(static)
    for (std::int64_t o = 0; o < cout; ++o) transform_weight_grad(s, du, o, dw);
  }
}

}  // namespace shrink::kernels::cpu
