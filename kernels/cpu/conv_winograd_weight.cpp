// Winograd F(4x4, 3x3) weight gradient (kernels/cpu/conv_winograd.h): the forward's tiles
// (winograd_tiles.h) with dy carried to the products by A dY A^T and the products' gradient
// back to the filter by G^T dU G.
#include <omp.h>

#include <algorithm>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/lane_mask.h"
#include "kernels/cpu/winograd_tiles.h"

namespace shrink::kernels::cpu {
namespace {

using namespace winograd;

thread_local AlignedBuffer t_du;      // the summed dU (calling thread)
thread_local AlignedBuffer t_part;    // one block's dU (each worker)
thread_local AlignedBuffer t_images;  // one block's padded x and dy (each worker)
thread_local AlignedBuffer t_v;       // V of one chunk, plain rows (each worker)
thread_local AlignedBuffer t_dm;      // dM of one chunk, plain rows (each worker)

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
    const __m256i live = first_lanes(lanes);
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
  float* const du = t_du.get(weights);
  const int threads = omp_in_parallel() ? 1 : static_cast<int>(std::min<std::int64_t>(omp_get_max_threads(), blocks));
#pragma omp parallel num_threads(threads)
  {
    float* const padded = t_images.get(2 * images * g.image);
    float* const grads = padded + images * g.image;
    float* const v = t_v.get(kPos * v_pos);
    float* const dm = t_dm.get(kPos * dm_pos);
    float* const part = t_part.get(weights);
#pragma omp for schedule(static, 1) ordered
    for (std::int64_t b = 0; b < blocks; ++b) {
      const std::int64_t img0 = b * images, img1 = std::min(s.n, img0 + images);
      for (std::int64_t img = img0; img < img1; ++img) {
        for (std::int64_t c = 0; c < cin; ++c)
          pad_channel(s, g, x + img * cin * s.h * s.w, c, padded + (img - img0) * g.image);
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
