// Fused scaled dot-product attention on CUDA (the formulas: kernels/formulas/attention.h,
// shared with the CPU). A warp owns one query row (forward, and dq in the backward) or one
// key row (dk and dv): its lanes score 32 keys (or queries) at a time, each lane one dot
// product, and the warp folds them into an online softmax; the 32 weights go through shared
// memory and every lane then accumulates its own output features straight into the row it
// owns (no other warp writes it: no atomics, the same bits every run). No score matrix
// exists anywhere: global memory holds q, k, v, out and one log-sum-exp per query, whatever
// the sequence length, and no feature size is too large for the shared memory.
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/row_reduce.cuh"
#include "kernels/formulas/attention.h"

namespace shrink::kernels::cuda {

namespace {

using formulas::attention_mask_row;
using formulas::attention_row;
using formulas::m_exp;
using rows::kWarp;

using WarpLoop = rows::RowLoop<kWarp>;
constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / kWarp;

template <class T>
__device__ T warp_sum(T x) {
  return rows::group_reduce<kWarp>(rows::SumAcc<T>{x}, static_cast<rows::SumAcc<T>*>(nullptr)).v;
}
template <class T>
__device__ T warp_max(T x) {
  return rows::group_reduce<kWarp>(rows::MaxAcc<T>{x}, static_cast<rows::MaxAcc<T>*>(nullptr)).v;
}

template <class T>
__device__ T dot(const T* a, const T* b, std::int64_t n) {
  T sum = T(0);
  for (std::int64_t c = 0; c < n; ++c) sum += a[c] * b[c];
  return sum;
}

// row[c] = 0 for this lane's features c (c = lane, lane + 32, ...).
template <class T>
__device__ void zero_lanes(T* row, std::int64_t n) {
  for (std::int64_t c = rows::RowLoop<kWarp>::lane(); c < n; c += kWarp) row[c] = T(0);
}

// scale a . b + mask_ij for rows a (of query i) and b (of key j), n features.
template <class T>
__device__ T score(const AttentionShape& s, const T* a, const T* b, std::int64_t n, const T* mask_row,
                   std::int64_t j) {
  return dot(a, b, n) * static_cast<T>(s.scale) + (mask_row ? mask_row[j * s.mask_col] : T(0));
}

// exp(x - shift), 0 when the shift is -inf (nothing but -inf seen: a fully masked row).
template <class T>
__device__ T exp_shifted(T x, T shift) {
  return shift == rows::neg_inf<T>() ? T(0) : m_exp(x - shift);
}

// p_ij and ds_ij of one (query i, key j) pair in the backward, from the forward's lse_i and
// delta_i = dout_i . out_i (the rows are problem p's; mask_row is query i's or null).
template <class T>
struct PairGradient {
  T p, ds;
};
template <class T>
__device__ PairGradient<T> pair_gradient(const AttentionShape& s, const T* qi, const T* kj, const T* vj,
                                         const T* dout_i, const T* mask_row, std::int64_t j, T lse_i, T delta_i) {
  const T p = exp_shifted(score(s, qi, kj, s.d, mask_row, j), lse_i);
  return {p, formulas::attention_dscore(p, dot(dout_i, vj, s.dv), delta_i, static_cast<T>(s.scale))};
}

// acc[c] = acc[c] * factor + sum_{r < n} w[r] rows[r * stride + c] for this lane's features c
// (c = lane, lane + 32, ...): the weighted rows of one chunk folded into a row the warp owns.
template <class T>
__device__ void accumulate_rows(T* acc, std::int64_t cols, T factor, const T* w, const T* rows,
                                std::int64_t stride, std::int64_t n) {
  for (std::int64_t c = rows::RowLoop<kWarp>::lane(); c < cols; c += kWarp) {
    T a = acc[c] * factor;
    for (std::int64_t r = 0; r < n; ++r) a += w[r] * rows[r * stride + c];
    acc[c] = a;
  }
}

template <class T>
__global__ void attention_kernel(AttentionShape s, const T* q, const T* k, const T* v, const T* mask, T* out,
                                 T* lse) {
  __shared__ T weights[kWarpsPerBlock][kWarp];
  const int lane = WarpLoop::lane(), warp = threadIdx.x / kWarp;
  for (std::int64_t task = WarpLoop::first(); task < s.problems() * s.tq; task += WarpLoop::step()) {
    const std::int64_t p = task / s.tq, i = task % s.tq;
    const T* qi = q + attention_row(s.q, s.inner, p, i);
    const T* mask_row = mask ? mask + attention_mask_row(s, p, i) : nullptr;
    T* o = out + attention_row(s.out, s.inner, p, i);
    zero_lanes(o, s.dv);
    formulas::OnlineSoftmax<T> stats{rows::neg_inf<T>(), T(0)};
    for (std::int64_t j0 = 0; j0 < s.tk; j0 += kWarp) {
      const std::int64_t j = j0 + lane;
      const T sj = j < s.tk ? score(s, qi, k + attention_row(s.k, s.inner, p, j), s.d, mask_row, j)
                            : rows::neg_inf<T>();
      const T factor = stats.rescale_for(warp_max(sj));
      const T pj = j < s.tk ? exp_shifted(sj, stats.m) : T(0);
      stats.l += warp_sum(pj);
      weights[warp][lane] = pj;
      __syncwarp();
      const std::int64_t n = s.tk - j0 < kWarp ? s.tk - j0 : kWarp;
      accumulate_rows(o, s.dv, factor, weights[warp], v + attention_row(s.v, s.inner, p, j0), s.v.row, n);
      __syncwarp();
    }
    const T inv = T(1) / stats.l;
    for (std::int64_t c = lane; c < s.dv; c += kWarp) o[c] *= inv;
    if (lane == 0) lse[task] = stats.log_sum_exp();
  }
}

// delta_i = dout_i . out_i and dq_i = scale sum_j ds_ij k_j, a warp per query row.
template <class T>
__global__ void attention_dq_kernel(AttentionShape s, const T* q, const T* k, const T* v, const T* mask,
                                    const T* out, const T* lse, const T* dout, T* delta, T* dq) {
  __shared__ T dscores[kWarpsPerBlock][kWarp];
  const int lane = WarpLoop::lane(), warp = threadIdx.x / kWarp;
  for (std::int64_t task = WarpLoop::first(); task < s.problems() * s.tq; task += WarpLoop::step()) {
    const std::int64_t p = task / s.tq, i = task % s.tq;
    const T* qi = q + attention_row(s.q, s.inner, p, i);
    const T* oi = out + attention_row(s.out, s.inner, p, i);
    const T* gi = dout + attention_row(s.out, s.inner, p, i);
    const T* mask_row = mask ? mask + attention_mask_row(s, p, i) : nullptr;
    T* dqi = dq + attention_row(s.q, s.inner, p, i);
    T part = T(0);
    for (std::int64_t c = lane; c < s.dv; c += kWarp) part += gi[c] * oi[c];  // this lane's share
    const T delta_i = warp_sum(part);
    if (lane == 0) delta[task] = delta_i;
    zero_lanes(dqi, s.d);
    for (std::int64_t j0 = 0; j0 < s.tk; j0 += kWarp) {
      const std::int64_t j = j0 + lane;
      T ds = T(0);
      if (j < s.tk)
        ds = pair_gradient(s, qi, k + attention_row(s.k, s.inner, p, j), v + attention_row(s.v, s.inner, p, j), gi,
                           mask_row, j, lse[task], delta_i).ds;
      dscores[warp][lane] = ds;
      __syncwarp();
      const std::int64_t n = s.tk - j0 < kWarp ? s.tk - j0 : kWarp;
      accumulate_rows(dqi, s.d, T(1), dscores[warp], k + attention_row(s.k, s.inner, p, j0), s.k.row, n);
      __syncwarp();
    }
  }
}

// dv_j = sum_i p_ij dout_i and dk_j = scale sum_i ds_ij q_i, a warp per key row (after the dq
// kernel, whose delta it reads).
template <class T>
__global__ void attention_dkv_kernel(AttentionShape s, const T* q, const T* k, const T* v, const T* mask,
                                     const T* lse, const T* dout, const T* delta, T* dk, T* dv) {
  __shared__ T probs[kWarpsPerBlock][kWarp];
  __shared__ T dscores[kWarpsPerBlock][kWarp];
  const int lane = WarpLoop::lane(), warp = threadIdx.x / kWarp;
  for (std::int64_t task = WarpLoop::first(); task < s.problems() * s.tk; task += WarpLoop::step()) {
    const std::int64_t p = task / s.tk, j = task % s.tk;
    const T* kj = k + attention_row(s.k, s.inner, p, j);
    const T* vj = v + attention_row(s.v, s.inner, p, j);
    T* dkj = dk + attention_row(s.k, s.inner, p, j);
    T* dvj = dv + attention_row(s.v, s.inner, p, j);
    zero_lanes(dkj, s.d);
    zero_lanes(dvj, s.dv);
    for (std::int64_t i0 = 0; i0 < s.tq; i0 += kWarp) {
      const std::int64_t i = i0 + lane;
      PairGradient<T> g{T(0), T(0)};
      if (i < s.tq)
        g = pair_gradient(s, q + attention_row(s.q, s.inner, p, i), kj, vj, dout + attention_row(s.out, s.inner, p, i),
                          mask ? mask + attention_mask_row(s, p, i) : nullptr, j, lse[p * s.tq + i],
                          delta[p * s.tq + i]);
      probs[warp][lane] = g.p;
      dscores[warp][lane] = g.ds;
      __syncwarp();
      const std::int64_t n = s.tq - i0 < kWarp ? s.tq - i0 : kWarp;
      accumulate_rows(dvj, s.dv, T(1), probs[warp], dout + attention_row(s.out, s.inner, p, i0), s.out.row, n);
      accumulate_rows(dkj, s.d, T(1), dscores[warp], q + attention_row(s.q, s.inner, p, i0), s.q.row, n);
      __syncwarp();
    }
  }
}

}  // namespace

void CudaBackend::attention(DType t, const AttentionShape& s, const void* q, const void* k, const void* v,
                            const void* mask, void* out, void* lse) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    attention_kernel<T><<<rows::row_blocks(s.problems() * s.tq, kWarpsPerBlock), kThreads, 0, stream()>>>(
        s, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
        static_cast<const T*>(mask), static_cast<T*>(out), static_cast<T*>(lse));
  });
  check_launch("attention");
}

void CudaBackend::attention_backward(DType t, const AttentionShape& s, const void* q, const void* k,
                                     const void* v, const void* mask, const void* out, const void* lse,
                                     const void* dout, void* delta, void* dq, void* dk, void* dv) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* mask_t = static_cast<const T*>(mask);
    attention_dq_kernel<T><<<rows::row_blocks(s.problems() * s.tq, kWarpsPerBlock), kThreads, 0, stream()>>>(
        s, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), mask_t,
        static_cast<const T*>(out), static_cast<const T*>(lse), static_cast<const T*>(dout), static_cast<T*>(delta),
        static_cast<T*>(dq));
    check_launch("attention_backward (dq)");
    attention_dkv_kernel<T><<<rows::row_blocks(s.problems() * s.tk, kWarpsPerBlock), kThreads, 0, stream()>>>(
        s, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), mask_t,
        static_cast<const T*>(lse), static_cast<const T*>(dout), static_cast<const T*>(delta), static_cast<T*>(dk),
        static_cast<T*>(dv));
  });
  check_launch("attention_backward (dk, dv)");
}

}  // namespace shrink::kernels::cuda
