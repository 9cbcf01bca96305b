// Reference reductions over the middle axis of (outer, reduce, inner), in double precision.
// Plain loops; the tests' oracle for kernels/cpu/reduce.cpp and kernels/cuda/reduce.cu.
#pragma once
#include <cstdint>
#include <cmath>
#include <limits>

namespace shrink::kernels::reference {

// in: (outer, reduce, inner) -> out: (outer, inner)
inline void reduce_sum(std::int64_t outer, std::int64_t reduce, std::int64_t inner,
                       const double* in, double* out) {
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      double total = 0;
      for (std::int64_t r = 0; r < reduce; ++r) total += in[(o * reduce + r) * inner + i];
      out[o * inner + i] = total;
    }
}

// in: (outer, reduce, inner) -> out, argmax: (outer, inner). Ties go to the first index; a
// row of -inf has argmax 0. reduce must be >= 1.
inline void reduce_max(std::int64_t outer, std::int64_t reduce, std::int64_t inner,
                       const double* in, double* out, std::int64_t* argmax) {
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      double best = in[o * reduce * inner + i];
      std::int64_t best_r = 0;
      for (std::int64_t r = 1; r < reduce; ++r) {
        const double v = in[(o * reduce + r) * inner + i];
        if (v > best) {
          best = v;
          best_r = r;
        }
      }
      out[o * inner + i] = best;
      if (argmax) argmax[o * inner + i] = best_r;
    }
}

// Smallest i with x[i] NaN or +-Inf, or n (the oracle of find_nonfinite).
template <class T>
std::int64_t first_nonfinite(std::int64_t n, const T* x) {
  for (std::int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return n;
}

}  // namespace shrink::kernels::reference
