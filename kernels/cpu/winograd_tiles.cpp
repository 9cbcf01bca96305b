// The Winograd tiles (kernels/cpu/winograd_tiles.h): padding, chunks, the input transform.
#include "kernels/cpu/winograd_tiles.h"

#include <algorithm>

namespace shrink::kernels::cpu::winograd {

namespace {

// Positions a row that end it after its last whole vector and are written one float at a time
// when there are at most this many (a 32-column map has 9 positions a row: one vector and one
// more, where a second vector's loads, transpose and stores did 1/8 useful work).
constexpr std::int64_t kScalarTail = 3;

// Padded columns 4 q + 8 k .. + 7 of one row for k = 0..3, lanes outside the input [0, w) zero;
// `live` is each load's lanes inside the input. Returns the 8 positions of each phase.
inline void load_phases(const float* src, std::int64_t j_first, const __m256i live[4], __m256 out[kTile]) {
  __m256 v[4];  // padded columns 4q + 8k .. + 7, input columns 4q + 8k - pad_w ..
  for (int k = 0; k < 4; ++k) v[k] = _mm256_maskload_ps(src + j_first + 8 * k, live[k]);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
  const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
  out[0] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t0, t2, 0x44), order);
  out[1] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t0, t2, 0xEE), order);
  out[2] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t1, t3, 0x44), order);
  out[3] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(t1, t3, 0xEE), order);
}

}  // namespace

// Channel c of one image, padded and split into its 4 column phases: rows outside the input
// are zero-filled; the input rows go 8 positions (32 padded columns) at a time, four masked
// loads straight from the input row (lanes in the padding read nothing and hold zero) and an
// 8 x 4 transpose of (position, phase) pairs. Vectors run column block by column block, so each
// block's load masks are made once for all rows; a short tail of positions is written scalar.
void pad_channel(const Conv2dShape& s, const Geometry& g, const float* x, std::int64_t c, float* dst) {
  float* plane[kTile];
  for (std::int64_t phase = 0; phase < kTile; ++phase) plane[phase] = dst + (c * kTile + phase) * g.plane();
  const std::int64_t first = std::min(g.hp, s.pad_h), end = std::min(g.hp, s.pad_h + s.h);  // input rows
  auto input_row = [&](std::int64_t r) { return x + (c * s.h + r - s.pad_h) * s.w; };
  for (float* p : plane) std::fill_n(p, first * g.wq, 0.0f);

  const std::int64_t tail = g.wq % kLanes, vector_end = tail > kScalarTail ? g.wq : g.wq - tail;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i width = _mm256_set1_epi32(static_cast<int>(s.w));
  // A full store of the last block may run past its row into the first block of the next row of
  // the same phase plane (never past the plane: its last row stores exactly). Blocks go last to
  // first and rows top to bottom, so whatever a store runs over is written after it.
  for (std::int64_t block = ceil_div(vector_end, kLanes) - 1; block >= 0; --block) {
    const std::int64_t q = block * kLanes;
    const std::int64_t j_first = kTile * q - s.pad_w;  // input column of the block's first padded column
    __m256i live[4];
    for (int k = 0; k < 4; ++k) {
      const __m256i j = _mm256_add_epi32(lane, _mm256_set1_epi32(static_cast<int>(j_first + 8 * k)));
      live[k] = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), j), _mm256_cmpgt_epi32(width, j));
    }
    for (std::int64_t r = first; r < end; ++r) {
      __m256 phases[kTile];
      load_phases(input_row(r), j_first, live, phases);
      if ((r * g.wq + q) + kLanes <= g.hp * g.wq) {
        for (std::int64_t phase = 0; phase < kTile; ++phase) _mm256_storeu_ps(plane[phase] + r * g.wq + q, phases[phase]);
      } else {  // the plane's last row: scalar stores, not vmaskmovps (a masked AVX2 store is
                // microcoded on AMD Zen, tens of cycles).
        alignas(32) float part[kLanes];
        for (std::int64_t phase = 0; phase < kTile; ++phase) {
          _mm256_store_ps(part, phases[phase]);
          std::copy_n(part, g.wq - q, plane[phase] + r * g.wq + q);
        }
      }
    }
  }
  for (std::int64_t r = first; r < end; ++r)
    for (std::int64_t q = vector_end; q < g.wq; ++q)
      for (std::int64_t phase = 0; phase < kTile; ++phase) {
        const std::int64_t j = kTile * q + phase - s.pad_w;
        plane[phase][r * g.wq + q] = j >= 0 && j < s.w ? input_row(r)[j] : 0.0f;
      }
  for (float* p : plane) std::fill_n(p + end * g.wq, (g.hp - end) * g.wq, 0.0f);
}

Chunk::Chunk(const Geometry& g, const Conv2dShape& s, std::int64_t first_image, std::int64_t b, std::int64_t n, float* v_,
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
}

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

}  // namespace shrink::kernels::cpu::winograd
