// Data movement: strided copies (transpose, permute, slice, concat, broadcast) and the
// gather/scatter pair index_select / index_add that pruning shrinks tensors with.
#include <cstring>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/row_pieces.h"

namespace shrink::kernels::cpu {

namespace {

template <class T>
void strided_copy_typed(int ndim, const std::int64_t* shape, const std::int64_t* in_strides,
                        const T* in, T* out) {
  if (ndim == 0) {
    out[0] = in[0];
    return;
  }
  const int last = ndim - 1;
  const std::int64_t row = shape[last], step = in_strides[last];
  std::int64_t rows = 1;
  for (int d = 0; d < last; ++d) rows *= shape[d];
  for_each_row_piece(rows, row, [&](std::int64_t r, std::int64_t begin, std::int64_t n) {
    std::int64_t rem = r, off = begin * step;
    for (int d = last - 1; d >= 0; --d) {
      off += (rem % shape[d]) * in_strides[d];
      rem /= shape[d];
    }
    const T* src = in + off;
    T* dst = out + r * row + begin;
    if (step == 1) {
      std::memcpy(dst, src, n * sizeof(T));
    } else {
      for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i * step];
    }
  });
}

}  // namespace

void CpuBackend::strided_copy(DType t, int ndim, const std::int64_t* shape,
                              const std::int64_t* in_strides, const void* in, void* out) {
  dispatch_all(t, [&](auto zero) {
    using T = decltype(zero);
    strided_copy_typed<T>(ndim, shape, in_strides, static_cast<const T*>(in), static_cast<T*>(out));
  });
}

void CpuBackend::index_select(DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                              const void* in, std::int64_t n_idx, const std::int64_t* idx,
                              void* out) {
  dispatch_all(t, [&](auto zero) {
    using T = decltype(zero);
    const T* src = static_cast<const T*>(in);
    T* dst = static_cast<T*>(out);
#pragma omp parallel for collapse(2) schedule(static) if (outer * n_idx * inner > kParallelGrain)
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t j = 0; j < n_idx; ++j)
        std::memcpy(dst + (o * n_idx + j) * inner, src + (o * in_dim + idx[j]) * inner,
                    inner * sizeof(T));
  });
}

void CpuBackend::index_add(DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                           std::int64_t n_idx, const std::int64_t* idx, const void* grad_out,
                           void* grad_in) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* g = static_cast<const T*>(grad_out);
    T* gi = static_cast<T*>(grad_in);
    // Parallel over `outer` only: repeated indices then never race within a thread's rows.
#pragma omp parallel for schedule(static) if (outer * n_idx * inner > kParallelGrain && outer > 1)
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t j = 0; j < n_idx; ++j) {
        const T* src = g + (o * n_idx + j) * inner;
        T* dst = gi + (o * in_dim + idx[j]) * inner;
#pragma omp simd
        for (std::int64_t i = 0; i < inner; ++i) dst[i] += src[i];
      }
  });
}

}  // namespace shrink::kernels::cpu
