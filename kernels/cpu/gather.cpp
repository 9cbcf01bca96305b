// Gather / scatter-add along the middle axis of (outer, dim, inner) with one index per
// element (the primitive of max's backward, later max-pooling and embeddings), and the
// device-side index check that core/ uses to validate user-given indices.
#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels::cpu {

void CpuBackend::gather(DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                        const void* in, std::int64_t n_idx, const std::int64_t* idx, void* out) {
  dispatch_all(t, [&](auto zero) {
    using T = decltype(zero);
    const T* src = static_cast<const T*>(in);
    T* dst = static_cast<T*>(out);
#pragma omp parallel for collapse(2) schedule(static) if (outer * n_idx * inner > kParallelGrain)
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t j = 0; j < n_idx; ++j) {
        const std::int64_t row = (o * n_idx + j) * inner;
        const T* base = src + o * in_dim * inner;
        for (std::int64_t i = 0; i < inner; ++i) dst[row + i] = base[idx[row + i] * inner + i];
      }
  });
}

void CpuBackend::scatter_add(DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                             std::int64_t n_idx, const std::int64_t* idx, const void* src,
                             void* out) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* s = static_cast<const T*>(src);
    T* dst = static_cast<T*>(out);
    // Parallel over `outer` only: within one outer slice repeated indices hit the same
    // element, so one thread walks j in order (the CUDA kernel's order too: deterministic).
#pragma omp parallel for schedule(static) if (outer * n_idx * inner > kParallelGrain && outer > 1)
    for (std::int64_t o = 0; o < outer; ++o) {
      T* base = dst + o * in_dim * inner;
      for (std::int64_t j = 0; j < n_idx; ++j) {
        const std::int64_t row = (o * n_idx + j) * inner;
        for (std::int64_t i = 0; i < inner; ++i) base[idx[row + i] * inner + i] += s[row + i];
      }
    }
  }, "scatter_add");
}

void CpuBackend::find_out_of_range(std::int64_t n, const std::int64_t* idx, std::int64_t bound,
                                   std::int64_t* first_bad) {
  std::int64_t at = n;
  for (std::int64_t i = 0; i < n; ++i)
    if (idx[i] < 0 || idx[i] >= bound) {
      at = i;
      break;
    }
  *first_bad = at;
}

}  // namespace shrink::kernels::cpu
