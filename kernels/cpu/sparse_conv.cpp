// The sparse convolution kernels of kernels/kernel_list.h (csr_conv2d*) on the CPU backend.
// With P = out_h out_w positions per image and col(x) the unfolded input (K = c_in kh kw rows,
// kernels/cpu/im2col.h) of a chunk of images side by side:
//   forward          y[b, r, :] = bias[r] + sum_{e in row r} v[e] col[c(e), b P .. (b+1) P)
//   backward input   dcol[c, :] = sum_{e in column c} v[e] dy[b, r(e), :], dx = col2im(dcol)
//   backward values dv[e]      = sum_b dot(dy[b, r(e), :], col[c(e), b P .. (b+1) P))
// Only the stored weights are multiplied: 2 nnz P multiply-adds per image. Images go through
// in chunks whose unfolded copy stays near kChunkElements, so a wide or depthwise layer never
// unfolds a whole batch at once (the forward unfolds no more than a tile). Forward and input
// gradient work on tiles of kTile positions of one image: the tile's slice of the unfolded
// input (gathered from the image) or of dy, packed into a contiguous (rows, kTile) block
// (~18 KiB for a 16-channel 3x3 layer), stays in L1 while every output row sums its entries
// into kTile accumulators held in registers (kernels/cpu/sparse.h row_times_tile, the CSR
// linear layer's inner kernel: one load per FMA, no store until the row is done). Every
// output element is written by one thread in a fixed order (deterministic); chunks add into
// dvalues in image order.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/im2col.h"
#include "kernels/cpu/sparse.h"

namespace shrink::kernels::cpu {

namespace {

constexpr std::int64_t kChunkElements = std::int64_t{1} << 22;  // 16 MiB of float col
// Rows of the unfolded input lie ld = chunk positions + kRowPad elements apart: a row length
// of whole 4 KiB pages would map a tile's K rows onto the same few L1 sets and evict them.
constexpr std::int64_t kRowPad = 16;

struct SparseConvPlan {
  std::int64_t k, positions, chunk, image_in;
  explicit SparseConvPlan(const Conv2dShape& s)
      : k(s.c_in * s.kh * s.kw), positions(s.out_h() * s.out_w()),
        chunk(std::clamp<std::int64_t>(kChunkElements / std::max<std::int64_t>(1, k * positions), 1,
                                       std::max<std::int64_t>(s.n, 1))),
        image_in(s.c_in * s.h * s.w) {}
};

template <class T>
T dot(std::int64_t n, const T* x, const T* y) {
  T acc = T(0);
#pragma omp simd reduction(+ : acc)
  for (std::int64_t i = 0; i < n; ++i) acc += x[i] * y[i];
  return acc;
}

constexpr std::int64_t kTile = kSparseTile;  // positions per tile (kernels/cpu/sparse.h)

// The output rows a tile of positions [p0, p0 + width) covers: `count` runs of (oy, first ox,
// length, offset in the tile).
struct TileRuns {
  struct Run {
    std::int64_t oy, ox0, length, at;
  };
  Run run[kTile];
  std::int64_t count = 0;
  TileRuns(std::int64_t p0, std::int64_t width, std::int64_t ow) {
    for (std::int64_t j = 0; j < width; ++count) {
      const std::int64_t oy = (p0 + j) / ow, ox0 = (p0 + j) % ow, length = std::min(width - j, ow - ox0);
      run[count] = {oy, ox0, length, j};
      j += length;
    }
  }
};

// packed (K, kTile) = the unfolded input of output positions [p0, p0 + width) of one image
// (x_image (c_in, h, w)), gathered straight from the image: row (c, ky, kx) holds the pixels
// that tap meets at those positions, 0 in the padding (im2col's rows, one tile at a time).
// `live[kx]`: the output columns whose tap kx reads inside the image.
template <class T>
void pack_tile(const Conv2dShape& s, const TapRange* live, const T* x_image, const TileRuns& runs, T* packed) {
  for (std::int64_t c = 0; c < s.c_in; ++c)
    for (std::int64_t ky = 0; ky < s.kh; ++ky)
      for (std::int64_t kx = 0; kx < s.kw; ++kx) {
        T* dst = packed + ((c * s.kh + ky) * s.kw + kx) * kTile;
        for (std::int64_t i = 0; i < runs.count; ++i) {
          const TileRuns::Run& r = runs.run[i];
          const std::int64_t iy = r.oy * s.stride_h - s.pad_h + ky * s.dilation_h;
          T* out = dst + r.at;
          if (iy < 0 || iy >= s.h) {
            for (std::int64_t q = 0; q < r.length; ++q) out[q] = T(0);
            continue;
          }
          // Positions q in [lo, hi) read inside the image, the rest the padding.
          const std::int64_t lo = std::clamp<std::int64_t>(live[kx].lo - r.ox0, 0, r.length);
          const std::int64_t hi = std::clamp<std::int64_t>(live[kx].hi - r.ox0, lo, r.length);
          for (std::int64_t q = 0; q < lo; ++q) out[q] = T(0);
          if (lo < hi) {  // src is the image's pixel of position lo: formed only when it exists
            const T* src = x_image + (c * s.h + iy) * s.w + (r.ox0 + lo) * s.stride_w + kx * s.dilation_w - s.pad_w;
            if (s.stride_w == 1) {
#pragma omp simd
              for (std::int64_t q = lo; q < hi; ++q) out[q] = src[q - lo];
            } else {
              for (std::int64_t q = lo; q < hi; ++q) out[q] = src[(q - lo) * s.stride_w];
            }
          }
          for (std::int64_t q = hi; q < r.length; ++q) out[q] = T(0);
        }
      }
}

template <class T>
void forward_impl(const Conv2dShape& s, const std::int64_t* rp, const std::int64_t* ci, const T* v,
                  const T* x, const T* bias, T* y) {
  const SparseConvPlan p(s);
  const std::int64_t nnz = rp[s.c_out], tiles = (p.positions + kTile - 1) / kTile;
  std::vector<TapRange> live;
  for (std::int64_t kx = 0; kx < s.kw; ++kx) live.push_back(tap_range(s.out_w(), s.w, s.stride_w, s.pad_w, kx * s.dilation_w));
  const bool parallel = !omp_in_parallel() && s.n * (nnz + s.c_out + p.k) * p.positions > kParallelGrain;
#pragma omp parallel if (parallel)
  {
    // row_times_tile reads all kTile lanes: past a partial tile's width they hold zeros or an
    // earlier tile's numbers, and their sums are dropped.
    std::vector<T> packed(static_cast<std::size_t>(p.k * kTile), T(0));
    alignas(64) T acc[kTile];
#pragma omp for collapse(2) schedule(static)
    for (std::int64_t b = 0; b < s.n; ++b)
      for (std::int64_t t = 0; t < tiles; ++t) {
        const std::int64_t p0 = t * kTile, width = std::min(kTile, p.positions - p0);
        pack_tile(s, live.data(), x + b * p.image_in, TileRuns(p0, width, s.out_w()), packed.data());
        for (std::int64_t r = 0; r < s.c_out; ++r) {
          row_times_tile(rp[r], rp[r + 1], ci, v, packed.data(), acc);
          T* out = y + (b * s.c_out + r) * p.positions + p0;
          const T shift = bias ? bias[r] : T(0);
          for (std::int64_t j = 0; j < width; ++j) out[j] = acc[j] + shift;
        }
      }
  }
}

template <class T>
void backward_input_impl(const Conv2dShape& s, const std::int64_t* rp, const std::int64_t* ci,
                         const T* v, const T* dy, T* dx) {
  const SparseConvPlan p(s);
  const bool threaded = !omp_in_parallel();
  // The transposed structure (CSC): column c's entries in row order, as their rows (of the
  // packed dy tile) and values.
  const std::int64_t nnz = rp[s.c_out], tiles = (p.positions + kTile - 1) / kTile;
  std::vector<std::int64_t> col_ptr(static_cast<std::size_t>(p.k + 1), 0), row(static_cast<std::size_t>(nnz));
  std::vector<T> scale(static_cast<std::size_t>(nnz));
  for (std::int64_t e = 0; e < nnz; ++e) ++col_ptr[ci[e] + 1];
  for (std::int64_t c = 0; c < p.k; ++c) col_ptr[c + 1] += col_ptr[c];
  std::vector<std::int64_t> fill(col_ptr.begin(), col_ptr.end() - 1);
  for (std::int64_t r = 0; r < s.c_out; ++r)
    for (std::int64_t e = rp[r]; e < rp[r + 1]; ++e) {
      const std::int64_t at = fill[ci[e]]++;
      scale[at] = v[e];
      row[at] = r;
    }
  std::vector<T> dcol(static_cast<std::size_t>(p.k * (p.positions * p.chunk + kRowPad)));
  std::fill(dx, dx + s.n * p.image_in, T(0));
  for (std::int64_t b0 = 0; b0 < s.n; b0 += p.chunk) {
    const std::int64_t nb = std::min(p.chunk, s.n - b0), ld = nb * p.positions + kRowPad;
    const bool parallel = threaded && nb * (nnz + p.k) * p.positions > kParallelGrain;
#pragma omp parallel if (parallel)
    {
      // dy's rows of one image lie `positions` apart (often whole pages): the tile is packed
      // (c_out, kTile) first so that its rows do not share L1 sets.
      // (past a partial tile's width, lanes hold zeros or an earlier tile's numbers: dropped).
      std::vector<T> packed(static_cast<std::size_t>(s.c_out * kTile), T(0));
      alignas(64) T acc[kTile];
#pragma omp for collapse(2) schedule(static)
      for (std::int64_t b = 0; b < nb; ++b)
        for (std::int64_t t = 0; t < tiles; ++t) {
          const std::int64_t p0 = t * kTile, width = std::min(kTile, p.positions - p0);
          const T* image = dy + (b0 + b) * s.c_out * p.positions + p0;
          for (std::int64_t r = 0; r < s.c_out; ++r)
            std::copy_n(image + r * p.positions, width, packed.data() + r * kTile);
          for (std::int64_t c = 0; c < p.k; ++c) {
            row_times_tile(col_ptr[c], col_ptr[c + 1], row.data(), scale.data(), packed.data(), acc);
            std::copy_n(acc, width, dcol.data() + c * ld + b * p.positions + p0);
          }
        }
    }
    col2im_add(s, s.c_in, dcol.data(), ld, nb, dx + b0 * p.image_in, p.image_in, threaded);
  }
}

template <class T>
void backward_values_impl(const Conv2dShape& s, const std::int64_t* rp, const std::int64_t* ci,
                          const T* x, const T* dy, T* dv) {
  const SparseConvPlan p(s);
  const bool threaded = !omp_in_parallel();
  const std::int64_t nnz = rp[s.c_out];
  std::fill(dv, dv + nnz, T(0));
  std::vector<T> col(static_cast<std::size_t>(p.k * (p.positions * p.chunk + kRowPad)));
  for (std::int64_t b0 = 0; b0 < s.n; b0 += p.chunk) {
    const std::int64_t nb = std::min(p.chunk, s.n - b0), ld = nb * p.positions + kRowPad;
    im2col(s, s.c_in, x + b0 * p.image_in, p.image_in, nb, col.data(), ld, threaded);
    const bool parallel = threaded && nb * (nnz + s.c_out) * p.positions > kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t r = 0; r < s.c_out; ++r)
      for (std::int64_t e = rp[r]; e < rp[r + 1]; ++e) {
        T acc = T(0);
        for (std::int64_t b = 0; b < nb; ++b)
          acc += dot(p.positions, dy + ((b0 + b) * s.c_out + r) * p.positions,
                     col.data() + ci[e] * ld + b * p.positions);
        dv[e] += acc;
      }
  }
}

}  // namespace

void CpuBackend::csr_conv2d(DType t, const Conv2dShape& s, const std::int64_t* row_ptr,
                            const std::int64_t* col_idx, const void* values, const void* x,
                            const void* bias, void* y) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    forward_impl(s, row_ptr, col_idx, static_cast<const T*>(values), static_cast<const T*>(x),
                 static_cast<const T*>(bias), static_cast<T*>(y));
  }, "csr_conv2d");
}

void CpuBackend::csr_conv2d_backward_input(DType t, const Conv2dShape& s, const std::int64_t* row_ptr,
                                           const std::int64_t* col_idx, const void* values,
                                           const void* dy, void* dx) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    backward_input_impl(s, row_ptr, col_idx, static_cast<const T*>(values), static_cast<const T*>(dy),
                        static_cast<T*>(dx));
  }, "csr_conv2d_backward_input");
}

void CpuBackend::csr_conv2d_backward_values(DType t, const Conv2dShape& s, const std::int64_t* row_ptr,
                                            const std::int64_t* col_idx, const void* x, const void* dy,
                                            void* dvalues) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    backward_values_impl(s, row_ptr, col_idx, static_cast<const T*>(x), static_cast<const T*>(dy),
                         static_cast<T*>(dvalues));
  }, "csr_conv2d_backward_values");
}

}  // namespace shrink::kernels::cpu
