// Fused scaled dot-product attention on the CPU (the formulas: kernels/formulas/attention.h).
// Forward: each task is one problem's block of kBlockQ queries; it walks the keys kBlockK at a
// time, the score tile and p v by the project's GEMM (kernels/cpu/gemm.h: inside the parallel
// region it runs on the calling thread alone), and folds each block into an online softmax,
// so only a kBlockQ x kBlockK tile of scores ever exists. Backward: one task per problem (its dK and dV
// sum over every query), a single pass over key blocks that recomputes p from the saved
// log-sum-exp. Every sum runs in an order fixed by the shape, so results do not depend on
// the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/vector_exp.h"
#include "kernels/formulas/attention.h"

namespace shrink::kernels::cpu {

namespace {

using formulas::attention_mask_row;
using formulas::attention_row;

constexpr std::int64_t kBlockQ = 32;
constexpr std::int64_t kBlockK = 64;

// y[j] = exp(x[j] - shift) for j < n, returning their sum; a shift of -inf (a row masked with
// -inf throughout so far) gives 0 rather than exp(-inf + inf) = NaN.
template <class T>
T exp_shifted(const T* x, T shift, T* y, std::int64_t n) {
  if (shift == -std::numeric_limits<T>::infinity()) {
    std::fill(y, y + n, T(0));
    return T(0);
  }
  if constexpr (std::is_same_v<T, float>) {
    return vexp::exp_shifted(x, shift, y, n);
  } else {
    T total = T(0);
    for (std::int64_t j = 0; j < n; ++j) total += (y[j] = std::exp(x[j] - shift));
    return total;
  }
}

// max_j x[j], eight lanes at a time (max is exact: any order gives the same answer).
template <class T>
T row_max(const T* x, std::int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (std::int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

// s (rows, n) += the mask of queries i0 .. i0 + rows and keys j0 .. j0 + n (nothing without one).
template <class T>
void add_mask(const AttentionShape& sh, const T* mask, std::int64_t p, std::int64_t i0, std::int64_t rows,
              std::int64_t j0, std::int64_t n, T* s) {
  if (!mask) return;
  for (std::int64_t i = 0; i < rows; ++i) {
    const T* m = mask + attention_mask_row(sh, p, i0 + i) + j0 * sh.mask_col;
    T* row = s + i * n;
    if (sh.mask_col == 0)
      for (std::int64_t j = 0; j < n; ++j) row[j] += m[0];
    else
      for (std::int64_t j = 0; j < n; ++j) row[j] += m[j];
  }
}

// The scores of a (rows x n) tile: scale q_i . k_j + mask_ij.
template <class T>
void score_tile(const AttentionShape& sh, const T* q, const T* k, const T* mask, std::int64_t p, std::int64_t i0,
                std::int64_t rows, std::int64_t j0, std::int64_t n, T* s) {
  gemm(false, true, rows, n, sh.d, static_cast<T>(sh.scale), q + attention_row(sh.q, sh.inner, p, i0), sh.q.row,
       k + attention_row(sh.k, sh.inner, p, j0), sh.k.row, T(0), s, n);
  add_mask(sh, mask, p, i0, rows, j0, n, s);
}

template <class T>
void attention_typed(const AttentionShape& sh, const T* q, const T* k, const T* v, const T* mask, T* out, T* lse) {
  const std::int64_t q_blocks = (sh.tq + kBlockQ - 1) / kBlockQ;
  const std::int64_t tasks = sh.problems() * q_blocks;
  const std::int64_t work = sh.problems() * sh.tq * sh.tk * (sh.d + sh.dv);
#pragma omp parallel if (work > kParallelGrain)
  {
    std::vector<T> scores(static_cast<size_t>(kBlockQ * kBlockK)), acc(static_cast<size_t>(kBlockQ * sh.dv));
    std::vector<formulas::OnlineSoftmax<T>> stats(static_cast<size_t>(kBlockQ));
#pragma omp for schedule(static)
    for (std::int64_t task = 0; task < tasks; ++task) {
      const std::int64_t p = task / q_blocks, i0 = (task % q_blocks) * kBlockQ;
      const std::int64_t bq = std::min(kBlockQ, sh.tq - i0);
      std::fill(stats.begin(), stats.end(), formulas::OnlineSoftmax<T>{-std::numeric_limits<T>::infinity(), T(0)});
      for (std::int64_t j0 = 0; j0 < sh.tk; j0 += kBlockK) {
        const std::int64_t bk = std::min(kBlockK, sh.tk - j0);
        score_tile(sh, q, k, mask, p, i0, bq, j0, bk, scores.data());
        for (std::int64_t i = 0; i < bq; ++i) {
          T* s = scores.data() + i * bk;
          const T factor = stats[i].rescale_for(row_max(s, bk));
          if (j0 > 0 && factor != T(1))
            for (std::int64_t c = 0; c < sh.dv; ++c) acc[i * sh.dv + c] *= factor;
          stats[i].l += exp_shifted(s, stats[i].m, s, bk);
        }
        // acc (bq, dv) = p v on the first key block, += after.
        gemm(false, false, bq, sh.dv, bk, T(1), scores.data(), bk, v + attention_row(sh.v, sh.inner, p, j0), sh.v.row,
             j0 > 0 ? T(1) : T(0), acc.data(), sh.dv);
      }
      for (std::int64_t i = 0; i < bq; ++i) {
        T* o = out + attention_row(sh.out, sh.inner, p, i0 + i);
        const T inv = T(1) / stats[i].l;
        for (std::int64_t c = 0; c < sh.dv; ++c) o[c] = acc[i * sh.dv + c] * inv;
        lse[p * sh.tq + i0 + i] = stats[i].log_sum_exp();
      }
    }
  }
}

template <class T>
void zero_rows(T* base, const AttentionLayout& l, std::int64_t inner, std::int64_t p, std::int64_t rows,
               std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    T* row = base + attention_row(l, inner, p, r);
    std::fill(row, row + cols, T(0));
  }
}

// One problem's gradients, key block by key block and, within, query block by query block:
// dV_blk += P^T dO, dP = dO V_blk^T, dS = P (dP - delta) scale, dQ += dS K_blk, dK_blk += dS^T Q,
// every product a GEMM writing straight into the strided gradient rows.
template <class T>
void attention_backward_problem(const AttentionShape& sh, std::int64_t p, const T* q, const T* k, const T* v,
                                const T* mask, const T* out, const T* lse, const T* dout, T* delta, T* dq, T* dk,
                                T* dv, T* prob, T* ds) {
  zero_rows(dq, sh.q, sh.inner, p, sh.tq, sh.d);
  zero_rows(dk, sh.k, sh.inner, p, sh.tk, sh.d);
  zero_rows(dv, sh.v, sh.inner, p, sh.tk, sh.dv);
  for (std::int64_t i = 0; i < sh.tq; ++i) {
    const T* o = out + attention_row(sh.out, sh.inner, p, i);
    const T* g = dout + attention_row(sh.out, sh.inner, p, i);
    T dot = T(0);
    for (std::int64_t c = 0; c < sh.dv; ++c) dot += g[c] * o[c];
    delta[p * sh.tq + i] = dot;
  }
  const T scale = static_cast<T>(sh.scale);
  for (std::int64_t j0 = 0; j0 < sh.tk; j0 += kBlockK) {
    const std::int64_t bk = std::min(kBlockK, sh.tk - j0);
    const T* kb = k + attention_row(sh.k, sh.inner, p, j0);
    const T* vb = v + attention_row(sh.v, sh.inner, p, j0);
    T* dkb = dk + attention_row(sh.k, sh.inner, p, j0);
    T* dvb = dv + attention_row(sh.v, sh.inner, p, j0);
    for (std::int64_t i0 = 0; i0 < sh.tq; i0 += kBlockQ) {
      const std::int64_t bq = std::min(kBlockQ, sh.tq - i0);
      const T* qb = q + attention_row(sh.q, sh.inner, p, i0);
      const T* gb = dout + attention_row(sh.out, sh.inner, p, i0);
      score_tile(sh, q, k, mask, p, i0, bq, j0, bk, prob);
      for (std::int64_t i = 0; i < bq; ++i) exp_shifted(prob + i * bk, lse[p * sh.tq + i0 + i], prob + i * bk, bk);
      gemm(true, false, bk, sh.dv, bq, T(1), prob, bk, gb, sh.out.row, T(1), dvb, sh.v.row);
      gemm(false, true, bq, bk, sh.dv, T(1), gb, sh.out.row, vb, sh.v.row, T(0), ds, bk);
      for (std::int64_t i = 0; i < bq; ++i) {
        const T delta_i = delta[p * sh.tq + i0 + i];
        for (std::int64_t j = 0; j < bk; ++j)
          ds[i * bk + j] = formulas::attention_dscore(prob[i * bk + j], ds[i * bk + j], delta_i, scale);
      }
      gemm(false, false, bq, sh.d, bk, T(1), ds, bk, kb, sh.k.row, T(1),
           dq + attention_row(sh.q, sh.inner, p, i0), sh.q.row);
      gemm(true, false, bk, sh.d, bq, T(1), ds, bk, qb, sh.q.row, T(1), dkb, sh.k.row);
    }
  }
}

template <class T>
void attention_backward_typed(const AttentionShape& sh, const T* q, const T* k, const T* v, const T* mask,
                              const T* out, const T* lse, const T* dout, T* delta, T* dq, T* dk, T* dv) {
  const std::int64_t work = sh.problems() * sh.tq * sh.tk * (sh.d + sh.dv);
#pragma omp parallel if (work > kParallelGrain)
  {
    std::vector<T> prob(static_cast<size_t>(kBlockQ * kBlockK)), ds(static_cast<size_t>(kBlockQ * kBlockK));
#pragma omp for schedule(static)
    for (std::int64_t p = 0; p < sh.problems(); ++p)
      attention_backward_problem(sh, p, q, k, v, mask, out, lse, dout, delta, dq, dk, dv, prob.data(), ds.data());
  }
}

}  // namespace

void CpuBackend::attention(DType t, const AttentionShape& s, const void* q, const void* k, const void* v,
                           const void* mask, void* out, void* lse) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    attention_typed(s, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
                    static_cast<const T*>(mask), static_cast<T*>(out), static_cast<T*>(lse));
  });
}

void CpuBackend::attention_backward(DType t, const AttentionShape& s, const void* q, const void* k,
                                    const void* v, const void* mask, const void* out, const void* lse,
                                    const void* dout, void* delta, void* dq, void* dk, void* dv) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    attention_backward_typed(s, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
                             static_cast<const T*>(mask), static_cast<const T*>(out), static_cast<const T*>(lse),
                             static_cast<const T*>(dout), static_cast<T*>(delta), static_cast<T*>(dq),
                             static_cast<T*>(dk), static_cast<T*>(dv));
  });
}

}  // namespace shrink::kernels::cpu
