// Winograd F(4x4, 3x3) forward convolution (kernels/cpu/conv_winograd.h; the tiles and
// transform matrices in winograd_tiles.h).
#include "kernels/cpu/conv_winograd.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/conv_epilogue.h"
#include "kernels/cpu/filter_cache.h"
#include "kernels/cpu/gemm_detail.h"
#include "kernels/cpu/winograd_tiles.h"

namespace shrink::kernels::cpu {
namespace {

using namespace winograd;
using gemm_detail::multiply_panels;

thread_local AlignedBuffer t_u;       // U as A panels (calling thread)
thread_local AlignedBuffer t_images;  // the padded, phase-split images of one block (each worker)
thread_local AlignedBuffer t_v;       // V of one chunk as B panels (each worker)
thread_local AlignedBuffer t_m;       // M = U V of one chunk (each worker)

// U = (G g G^T) for the filters g = w[o, c] of one A row panel (output channels [ip, ip + kMR),
// zero rows past c_out) and 8 input channels [c, c + 8) (fewer at the end), written straight in
// the A panel layout the products read: k-step c - c0 of row panel ip, position pos, at
// (pos c_in + c0) m_pad + ip kc + (c - c0) kMR, c0 the k block (kKC) holding c. Each filter's 36
// values go to an L1 scratch first, then each position's 6 x 8 block is transposed into 8 k-steps
// of 6 rows: 36 runs of 48 floats. (Before: U[pos][o][c] through memory, 36 stores 64 KB to 1 MB
// apart for every 8 filters, then packed in a second pass; at batch 1 the two took 3.5 ms of a
// 256 -> 256 layer at 8x8, four times the direct kernel's whole convolution.)
void transform_weights_packed(const Conv2dShape& s, const float* w, std::int64_t ip, std::int64_t c, float* upack) {
  const std::int64_t rows = std::min(kMR, s.c_out - ip), lanes = std::min(kLanes, s.c_in - c);
  const std::int64_t c0 = c / kKC * kKC, kc = std::min(kKC, s.c_in - c0), m_pad = round_up(s.c_out, kMR);
  alignas(32) float t[kMR][kPos][kLanes];  // t[r][pos]: 8 input channels of output channel ip + r
  for (std::int64_t r = 0; r < rows; ++r) {
    __m256 taps[9];
    load_filters(w + ((ip + r) * s.c_in + c) * 9, 9, lanes, taps);
    transform_filters(taps, [&](int pos, __m256 v) { _mm256_store_ps(t[r][pos], v); });
  }
  for (std::int64_t pos = 0; pos < kPos; ++pos) {
    __m256 block[8];  // rows: output channels (6, then 2 zero rows); columns: input channels
    for (std::int64_t r = 0; r < 8; ++r) block[r] = r < rows ? _mm256_load_ps(t[r][pos]) : _mm256_setzero_ps();
    transpose8(block);  // block[k]: input channel c + k of the 6 output channels
    float* d = upack + (pos * s.c_in + c0) * m_pad + ip * kc + (c - c0) * kMR;
    for (std::int64_t k = 0; k < lanes; ++k) {  // 6 floats a k-step
      _mm_storeu_ps(d + k * kMR, _mm256_castps256_ps128(block[k]));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + k * kMR + 4), _mm256_extractf128_ps(block[k], 1));
    }
  }
}

// M[pos] (+)= U[pos] V[pos] for positions [p0, p1): M[pos][o][column] at
// pos m_pos + o lanes + column, m_pad rows a position. The last row panel runs only its
// c_out rows (kernel_rx16<R>): with 8 output channels, a full 6 + 6 call would waste a third.
void multiply(const Conv2dShape& s, const float* upack, const Chunk& ch, std::int64_t c0, std::int64_t kc,
              std::int64_t p0, std::int64_t p1) {
  const std::int64_t panels = ch.lanes / kNR, m_pad = round_up(s.c_out, kMR);
  const float beta = c0 == 0 ? 0.0f : 1.0f;
  for (std::int64_t pos = p0; pos < p1; ++pos)
    for (std::int64_t jp = 0; jp < panels; ++jp)
      for (std::int64_t ip = 0; ip < s.c_out; ip += kMR)
        multiply_panels(kc, upack + (pos * s.c_in + c0) * m_pad + ip * kc, ch.v + pos * ch.v_pos + jp * kc * kNR,
                        ch.m + pos * ch.m_pos + ip * ch.lanes + jp * kNR, ch.lanes, std::min(kMR, s.c_out - ip),
                        kNR, beta);
}

// Where the chunk's tiles land in y: per tile its top-left output (channel 0), row, column.
struct TileOutputs {
  std::vector<std::int64_t> y_offset, row, col;
  TileOutputs(const Geometry& g, const Conv2dShape& s, const Chunk& ch) {
    for (std::int64_t t = ch.begin; t < ch.begin + ch.count; ++t) {
      const std::int64_t img = t / g.per_image, r = t % g.per_image;
      row.push_back(kTile * (r / g.tw));
      col.push_back(kTile * (r % g.tw));
      y_offset.push_back(img * s.c_out * g.oh * g.ow + row.back() * g.ow + col.back());
    }
  }
};

// y = A^T M A + bias for output channels [o0, o1) of the chunk's tiles, through the epilogue
// (Add: + the residual at y's offset; then Act) as each output is stored.
template <bool Add, EpilogueAct Act>
void transform_output(const Geometry& g, const Chunk& ch, const TileOutputs& at, const float* bias,
                      std::int64_t o0, std::int64_t o1, const float* residual, float* y) {
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
                           at.col[static_cast<std::size_t>(first)] + kTile * kLanes <= g.ow;
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
          if (at.row[head] + i >= g.oh) break;
          const std::int64_t out = at.y_offset[head] + o * g.oh * g.ow + i * g.ow;
          const __m256 run[4] = {_mm256_permute2f128_ps(lo_hi[0], lo_hi[1], 0x20),
                                 _mm256_permute2f128_ps(lo_hi[2], lo_hi[3], 0x20),
                                 _mm256_permute2f128_ps(lo_hi[0], lo_hi[1], 0x31),
                                 _mm256_permute2f128_ps(lo_hi[2], lo_hi[3], 0x31)};
          for (int part = 0; part < 4; ++part) {
            const std::int64_t e = out + 8 * part;
            _mm256_storeu_ps(y + e, epilogue8<Add, Act>(run[part], Add ? _mm256_loadu_ps(residual + e) : run[part]));
          }
          continue;
        }
        for (std::int64_t l = 0; l < lanes; ++l) {
          const std::size_t tile = head + static_cast<std::size_t>(l);
          const std::int64_t row = at.row[tile] + i, col = at.col[tile];
          if (row >= g.oh) continue;
          const __m128 v = l < 4 ? _mm256_castps256_ps128(lo_hi[l]) : _mm256_extractf128_ps(lo_hi[l - 4], 1);
          const std::int64_t e = at.y_offset[tile] + o * g.oh * g.ow + i * g.ow;
          if (col + kTile <= g.ow) {
            _mm_storeu_ps(y + e, epilogue4<Add, Act>(v, Add ? _mm_loadu_ps(residual + e) : v));
          } else {
            alignas(16) float part[kTile];
            _mm_store_ps(part, v);
            for (std::int64_t k = 0; col + k < g.ow; ++k) y[e + k] = epilogue1<Add, Act>(part[k], Add ? residual[e + k] : 0.0f);
          }
        }
      }
    }
  }
}

// f(i) for i in [begin, end): shared among the team when `split`, else on the calling thread
// with no parallel region at all. (An `omp parallel for if (false)` inside a worker is still a
// nested region that libgomp sets up and tears down, 2-3 us each, measured: as much as the
// transforms of a small chunk at 8 channels.)
template <class F>
void for_range(bool split, std::int64_t begin, std::int64_t end, F&& f) {
  if (split) {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = begin; i < end; ++i) f(i);
  } else {
    for (std::int64_t i = begin; i < end; ++i) f(i);
  }
}

// All of a chunk: V, M and y, k block by k block. `split` shares each step among the team
// (few chunks); otherwise the caller runs chunks on separate threads.
void run_chunk(const Conv2dShape& s, const Geometry& g, const float* images, const float* upack, const Chunk& ch,
               const float* bias, const ConvEpilogue& post, float* y, bool split) {
  for (std::int64_t c0 = 0; c0 < s.c_in; c0 += kKC) {
    const std::int64_t kc = std::min(kKC, s.c_in - c0);
    const VLayout panels{ch.v, ch.v_pos, kc * kNR, kNR};
    for_range(split, c0, c0 + kc, [&](std::int64_t c) { transform_input(g, images, ch, c0, panels, c, c + 1); });
    for_range(split, 0, kPos, [&](std::int64_t pos) { multiply(s, upack, ch, c0, kc, pos, pos + 1); });
  }
  const TileOutputs at(g, s, ch);
  const auto* residual = static_cast<const float*>(post.residual);
  with_epilogue(post, [&]<bool Add, EpilogueAct Act>() {
    for_range(split, 0, s.c_out,
              [&](std::int64_t o) { transform_output<Add, Act>(g, ch, at, bias, o, o + 1, residual, y); });
  });
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
               std::int64_t b, const float* bias, const ConvEpilogue& post, float* y, bool split) {
  const std::int64_t img0 = b * plan.images, img1 = std::min(s.n, img0 + plan.images);
  float* images = t_images.get((img1 - img0) * g.image);
  for_range(split, 0, (img1 - img0) * s.c_in, [&](std::int64_t ic) {
    const std::int64_t img = img0 + ic / s.c_in;
    pad_channel(s, g, x + img * s.c_in * s.h * s.w, ic % s.c_in, images + (img - img0) * g.image);
  });
  const std::int64_t t0 = img0 * g.per_image, t1 = img1 * g.per_image, size = plan.chunk_size(t1 - t0);
  const std::int64_t lanes = round_up(size, kNR);
  float* v = t_v.get(kPos * (lanes * std::min(kKC, s.c_in) + kNR));
  float* m = t_m.get(kPos * (lanes * round_up(s.c_out, kMR) + kNR));
  for (std::int64_t t = t0; t < t1; t += size) {
    const Chunk ch(g, s, img0, t, std::min(size, t1 - t), v, m);
    run_chunk(s, g, images, upack, ch, bias, post, y, split);
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

bool winograd_tiles_fill(const Conv2dShape& s) {
  if (!winograd_applies(s)) return false;
  // 36 products per tile against 9 per output pixel: worth it when partial tiles waste little.
  const Geometry g(s, s.c_in);
  return 4 * g.th * g.tw * 2 <= g.oh * g.ow;
}

bool winograd_tiles_pay(const Conv2dShape& s) {
  if (!winograd_tiles_fill(s)) return false;
  const Geometry g(s, s.c_in);
  // Each call reads U (36 values per filter for 9), and transforms it first unless filter_cache.h
  // kept it. With fewer than 8 tiles in the call that costs more than the products save (1
  // thread, against the direct kernel: 256 -> 256 at 8x8, 1 image = 4 tiles: 1.66 / 0.81 ms
  // transforming, 1.11 / 0.83 with U kept; 512 -> 512 at 4x4: 1 image 5.0 / 2.1 kept, 4 images
  // 4.9 / 3.9 kept; 8 images 12.0 / 12.2 and 12 images 12.1 / 17.9 transforming).
  constexpr std::int64_t kMinTiles = 8;
  return s.n * g.per_image >= kMinTiles;
}

bool winograd_preferred(const Conv2dShape& s) {
  if (!winograd_tiles_pay(s) || s.c_in < 4 || s.c_out < 4) return false;
  const std::int64_t pairs = s.c_in * s.c_out, pixels = s.out_h() * s.out_w();
  if (s.c_in >= 16 && s.c_out >= 16) return true;
  // Narrower layers (measured against the direct kernel, batch 64, 2 threads): on 32x32 maps
  // from 64 channel pairs (8 -> 8 1.12x, 4 -> 24 1.10x, 24 -> 8 1.50x, 8 -> 32 1.64x; 4 -> 12
  // and 12 -> 4 0.9x), on 16x16 maps from 8 channels each way and 256 pairs (8 -> 32 1.12x,
  // 24 -> 12 1.05x; 24 -> 8 0.87x, 32 -> 4 0.62x).
  if (pixels >= 1024) return pairs >= 64;
  return pixels >= 256 && s.c_in >= 8 && s.c_out >= 8 && pairs >= 256;
}

bool winograd_weight_grad_preferred(const Conv2dShape& s) {
  return winograd_preferred(s) && s.c_in >= 32 && s.c_out >= 32;
}

void conv2d_forward_winograd(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                             float* y, const ConvEpilogue& post) {
  if (s.n == 0 || s.c_out == 0) return;
  const Geometry g(s, s.c_in);
  const std::int64_t cin = s.c_in, cout = s.c_out, m_pad = round_up(cout, kMR);
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const std::int64_t u_floats = kPos * cin * m_pad;
  const std::int64_t panels = ceil_div(cout, kMR), groups = ceil_div(cin, kLanes);
  FilterHold hold;  // U, kept across calls while w is unchanged (filter_cache.h)
  const float* const upack = transformed_filters(
      {FilterTransform::WinogradPanels, w, cout * cin * 9, cin, cout}, u_floats, t_u.get(u_floats),
      [&](float* u) {
#pragma omp parallel for schedule(static) num_threads(threads)
        for (std::int64_t job = 0; job < panels * groups; ++job)
          transform_weights_packed(s, w, job / groups * kMR, job % groups * kLanes, u);
      },
      hold);
  const Plan plan(s, g, threads);
  if (plan.split) {
    for (std::int64_t b = 0; b < plan.blocks; ++b) run_block(s, g, plan, x, upack, b, bias, post, y, true);
  } else {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t b = 0; b < plan.blocks; ++b) run_block(s, g, plan, x, upack, b, bias, post, y, false);
  }
}

}  // namespace shrink::kernels::cpu
