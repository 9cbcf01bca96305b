// Philox-driven fills and dropout. Value i depends only on (seed, offset, i), so results are
// the same for any thread count and match the CUDA backend.
// The per-element formulas are kernels/formulas/random.h (shared with CUDA); here each Philox
// block gives its 4 values to 4 consecutive elements (philox_u32 per element computes the
// block 4 times and keeps one value: dropout was 8% of a vit-tiny training step).
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/row_pieces.h"
#include "kernels/formulas/random.h"

namespace shrink::kernels::cpu {

namespace {

// f(j, draw) for j in [begin, end) with draw = philox_u32(seed, offset, j), one block per 4.
template <class F>
void for_each_draw(std::uint64_t seed, std::uint64_t offset, std::int64_t begin, std::int64_t end, F&& f) {
  std::uint64_t index = offset + static_cast<std::uint64_t>(begin);
  for (std::int64_t j = begin; j < end;) {
    const Philox4 block = philox(seed, index >> 2);
    for (std::uint64_t lane = index & 3; lane < 4 && j < end; ++lane, ++j, ++index) f(j, block.v[lane]);
  }
}

}  // namespace

void CpuBackend::random_uniform(DType t, std::int64_t n, double lo, double hi, std::uint64_t seed,
                                std::uint64_t offset, void* out) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    T* o = static_cast<T*>(out);
    const T below_hi = formulas::uniform_below_hi<T>(lo, hi), top = static_cast<T>(hi);
    for_each_row_piece(1, n, [&](std::int64_t, std::int64_t begin, std::int64_t len) {
      for_each_draw(seed, offset, begin, begin + len, [&](std::int64_t i, std::uint32_t draw) {
        o[i] = formulas::uniform_from_draw<T>(draw, lo, hi - lo, top, below_hi);
      });
    });
  });
}

// Value i takes draws 2i and 2i + 1.
void CpuBackend::random_normal(DType t, std::int64_t n, double mean, double stddev,
                               std::uint64_t seed, std::uint64_t offset, void* out) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    T* o = static_cast<T*>(out);
    for_each_row_piece(1, n, [&](std::int64_t, std::int64_t begin, std::int64_t len) {
      std::uint32_t first = 0;
      for_each_draw(seed, offset, 2 * begin, 2 * (begin + len), [&](std::int64_t j, std::uint32_t draw) {
        if (j % 2 == 0)
          first = draw;
        else
          o[j / 2] = formulas::normal_from_draws<T>(first, draw, mean, stddev);
      });
    });
  });
}

void CpuBackend::dropout(DType t, std::int64_t n, double p, std::uint64_t seed,
                         std::uint64_t offset, const void* x, void* y, void* mask) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    T* pm = static_cast<T*>(mask);
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    const float keep_below = static_cast<float>(1.0 - p);
    for_each_row_piece(1, n, [&](std::int64_t, std::int64_t begin, std::int64_t len) {
      for_each_draw(seed, offset, begin, begin + len, [&](std::int64_t i, std::uint32_t draw) {
        const T m = formulas::dropout_from_draw<T>(draw, keep_below, scale);
        pm[i] = m;
        py[i] = px[i] * m;
      });
    });
  });
}

}  // namespace shrink::kernels::cpu
