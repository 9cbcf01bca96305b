// Per-unit Lp norms over (outer, units, inner) (kernels/kernel_list.h unit_norm). Each unit
// is owned by one thread and summed in a fixed order in double, so results are deterministic
// and independent of the thread count. Memory-bound: one pass over the input.
#include <cmath>
#include <string>

#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels::cpu {

namespace {

constexpr std::int64_t kUnitBlock = 256;  // units per task when they are the contiguous axis

template <int P, class T>
inline double term(T x) {
  const double d = static_cast<double>(x);
  return P == 1 ? std::fabs(d) : d * d;
}

template <int P>
inline double finish(double total) {
  return P == 1 ? total : std::sqrt(total);
}

// Four independent accumulators: a single one is bound by the latency of the add chain.
template <int P, class T>
double slice_total(const T* src, std::int64_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
  for (std::int64_t b = 0; b < n / 4; ++b) {
    a0 += term<P>(src[4 * b]);
    a1 += term<P>(src[4 * b + 1]);
    a2 += term<P>(src[4 * b + 2]);
    a3 += term<P>(src[4 * b + 3]);
  }
  for (std::int64_t i = n / 4 * 4; i < n; ++i) a0 += term<P>(src[i]);
  return (a0 + a1) + (a2 + a3);
}

template <int P, class T>
void unit_norm_typed(std::int64_t outer, std::int64_t units, std::int64_t inner, const T* in,
                     double* out) {
  const std::int64_t total = outer * units * inner;
  if (inner == 1) {
    // Units are the contiguous axis (a Linear's input columns): each task sums a block of
    // columns down the rows, so every load is a full cache line.
    const std::int64_t blocks = (units + kUnitBlock - 1) / kUnitBlock;
#pragma omp parallel for schedule(static) if (total > kParallelGrain && blocks > 1)
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
      const std::int64_t begin = blk * kUnitBlock;
      const std::int64_t len = begin + kUnitBlock < units ? kUnitBlock : units - begin;
      double acc[kUnitBlock] = {};
      for (std::int64_t o = 0; o < outer; ++o) {
        const T* row = in + o * units + begin;
#pragma omp simd
        for (std::int64_t u = 0; u < len; ++u) acc[u] += term<P>(row[u]);
      }
      for (std::int64_t u = 0; u < len; ++u) out[begin + u] = finish<P>(acc[u]);
    }
    return;
  }
  // Each unit is `outer` contiguous runs of `inner` (a Linear's rows, a conv's filters).
#pragma omp parallel for schedule(static) if (total > kParallelGrain && units > 1)
  for (std::int64_t u = 0; u < units; ++u) {
    double acc = 0;
    for (std::int64_t o = 0; o < outer; ++o) acc += slice_total<P>(in + (o * units + u) * inner, inner);
    out[u] = finish<P>(acc);
  }
}

}  // namespace

void CpuBackend::unit_norm(DType t, int p, std::int64_t outer, std::int64_t units,
                           std::int64_t inner, const void* in, double* out) {
  if (p != 1 && p != 2) throw Unsupported("unit_norm: p must be 1 or 2, got " + std::to_string(p));
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* src = static_cast<const T*>(in);
    if (p == 1) unit_norm_typed<1>(outer, units, inner, src, out);
    else unit_norm_typed<2>(outer, units, inner, src, out);
  }, "unit_norm");
}

}  // namespace shrink::kernels::cpu
