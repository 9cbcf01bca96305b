// Reference data movement: strided copy, index_select and its adjoint index_add. Plain loops
// over coordinates; element type is a template parameter since these move values exactly.
#pragma once
#include <cstdint>

#include "kernels/backend.h"

namespace shrink::kernels::reference {

// out: contiguous (shape[0], ..., shape[ndim-1]); in read at sum_d coord_d * in_strides[d].
template <class T>
void strided_copy(int ndim, const std::int64_t* shape, const std::int64_t* in_strides,
                  const T* in, T* out) {
  std::int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t rem = i, offset = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      offset += (rem % shape[d]) * in_strides[d];
      rem /= shape[d];
    }
    out[i] = in[offset];
  }
}

// in: (outer, in_dim, inner), idx: (n_idx) -> out: (outer, n_idx, inner)
template <class T>
void index_select(std::int64_t outer, std::int64_t in_dim, std::int64_t inner, const T* in,
                  std::int64_t n_idx, const std::int64_t* idx, T* out) {
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t j = 0; j < n_idx; ++j)
      for (std::int64_t i = 0; i < inner; ++i)
        out[(o * n_idx + j) * inner + i] = in[(o * in_dim + idx[j]) * inner + i];
}

// grad_out: (outer, n_idx, inner), idx: (n_idx); grad_in: (outer, in_dim, inner) += scatter.
// Repeated indices add up, in index order.
inline void index_add(std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                      std::int64_t n_idx, const std::int64_t* idx, const double* grad_out,
                      double* grad_in) {
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t j = 0; j < n_idx; ++j)
      for (std::int64_t i = 0; i < inner; ++i)
        grad_in[(o * in_dim + idx[j]) * inner + i] += grad_out[(o * n_idx + j) * inner + i];
}

}  // namespace shrink::kernels::reference
