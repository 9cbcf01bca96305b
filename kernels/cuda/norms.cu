// Per-unit Lp norms over (outer, units, inner) (kernels/kernel_list.h unit_norm; the CPU
// twin is kernels/cpu/norms.cpp). Unit u is a "row" of outer * inner elements read through
// the (outer, units, inner) layout: a warp (short rows) or a block (long rows) sums it in
// double with the fixed butterfly of row_reduce.cuh, so results do not depend on timing.
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/row_reduce.cuh"

namespace shrink::kernels::cuda {

namespace {

template <int P, class T>
__device__ __forceinline__ double norm_term(T x) {
  const double d = static_cast<double>(x);
  return P == 1 ? fabs(d) : d * d;
}

template <int P, class T, int kTpr>
__global__ void unit_norm_kernel(std::int64_t outer, std::int64_t units, std::int64_t inner,
                                 const T* in, double* out) {
  using Acc = rows::SumAcc<double>;
  using Loop = rows::RowLoop<kTpr>;
  __shared__ Acc scratch[32];
  const std::int64_t len = outer * inner;
  for (std::int64_t u = Loop::first(); u < units; u += Loop::step()) {
    Acc a = Acc::identity();
    for (std::int64_t k = Loop::lane(); k < len; k += kTpr) {
      const std::int64_t o = k / inner, i = k - o * inner;
      a.v += norm_term<P>(in[(o * units + u) * inner + i]);
    }
    a = rows::group_reduce<kTpr>(a, scratch);
    if (Loop::lane() == 0) out[u] = P == 1 ? a.v : sqrt(a.v);
  }
}

}  // namespace

void CudaBackend::unit_norm(DType t, int p, std::int64_t outer, std::int64_t units,
                            std::int64_t inner, const void* in, double* out) {
  if (p != 1 && p != 2) throw Unsupported("unit_norm: p must be 1 or 2, got " + std::to_string(p));
  if (units <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* src = static_cast<const T*>(in);
    rows::launch_rows(units, outer * inner, [&](auto tpr, unsigned grid, unsigned block) {
      constexpr int kTpr = decltype(tpr)::value;
      if (p == 1)
        unit_norm_kernel<1, T, kTpr><<<grid, block, 0, stream()>>>(outer, units, inner, src, out);
      else
        unit_norm_kernel<2, T, kTpr><<<grid, block, 0, stream()>>>(outer, units, inner, src, out);
    });
  }, "unit_norm");
  check_launch("unit_norm");
}

}  // namespace shrink::kernels::cuda
