// The Winograd tiles (kernels/cpu/winograd_tiles.h): padding, chunks, the input transform.
#include "kernels/cpu/winograd_tiles.h"

#include <algorithm>

namespace shrink::kernels::cpu::winograd {

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
      // A full store may run past this row into the later rows of the same phase plane (those
      // are written after this one), never past the plane: true everywhere but its last row.
      if ((r * g.wq + q) + kLanes <= g.hp * g.wq) {
        for (std::int64_t phase = 0; phase < kTile; ++phase)
          _mm256_storeu_ps(out[phase] + q, _mm256_permutevar8x32_ps(phases[phase], order));
      } else {  // the plane's last row: scalar stores, not vmaskmovps (a masked AVX2 store is
                // microcoded on AMD Zen, tens of cycles).
        alignas(32) float part[kLanes];
        for (std::int64_t phase = 0; phase < kTile; ++phase) {
          _mm256_store_ps(part, _mm256_permutevar8x32_ps(phases[phase], order));
          std::copy_n(part, g.wq - q, out[phase] + q);
        }
      }
    }
  }
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
