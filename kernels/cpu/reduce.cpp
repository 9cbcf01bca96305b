// Reductions over the middle axis of a (outer, reduce, inner) view. Each output element
// is owned by one thread and summed in a fixed order, so results are deterministic.
#include <limits>

#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels::cpu {

namespace {

constexpr std::int64_t kInnerBlock = 256;  // columns per task when reducing down rows

template <class T>
void sum_typed(std::int64_t outer, std::int64_t reduce, std::int64_t inner, const T* in, T* out) {
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * reduce > kParallelGrain && outer > 1)
    for (std::int64_t o = 0; o < outer; ++o) {
      const T* row = in + o * reduce;
      T acc = T(0);
#pragma omp simd reduction(+ : acc)
      for (std::int64_t r = 0; r < reduce; ++r) acc += row[r];
      out[o] = acc;
    }
    return;
  }
  const std::int64_t blocks = (inner + kInnerBlock - 1) / kInnerBlock;
#pragma omp parallel for collapse(2) schedule(static) if (outer * reduce * inner > kParallelGrain)
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
      const std::int64_t begin = blk * kInnerBlock;
      const std::int64_t end = begin + kInnerBlock < inner ? begin + kInnerBlock : inner;
      T* dst = out + o * inner;
#pragma omp simd
      for (std::int64_t i = begin; i < end; ++i) dst[i] = T(0);
      for (std::int64_t r = 0; r < reduce; ++r) {
        const T* src = in + (o * reduce + r) * inner;
#pragma omp simd
        for (std::int64_t i = begin; i < end; ++i) dst[i] += src[i];
      }
    }
}

template <class T>
void max_typed(std::int64_t outer, std::int64_t reduce, std::int64_t inner, const T* in, T* out,
               std::int64_t* argmax) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * reduce * inner > kParallelGrain)
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      const T* src = in + o * reduce * inner + i;
      T best = -std::numeric_limits<T>::infinity();
      std::int64_t best_at = 0;
      for (std::int64_t r = 0; r < reduce; ++r) {
        const T v = src[r * inner];
        if (v > best || (r == 0)) {  // first maximum wins ties
          best = v;
          best_at = r;
        }
      }
      out[o * inner + i] = best;
      if (argmax) argmax[o * inner + i] = best_at;
    }
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, DType t, std::int64_t outer, std::int64_t reduce,
                        std::int64_t inner, const void* in, void* out, std::int64_t* argmax) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* src = static_cast<const T*>(in);
    T* dst = static_cast<T*>(out);
    if (op == ReduceOp::Sum) sum_typed(outer, reduce, inner, src, dst);
    else max_typed(outer, reduce, inner, src, dst, argmax);
  });
}

}  // namespace shrink::kernels::cpu
