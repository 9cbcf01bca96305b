// Gather / scatter-add along the middle axis of (outer, dim, inner) with one index per
// element, and the device-side index check (kernels/kernel_list.h). No atomics in the data
// kernels: scatter_add gives each (outer, inner) column to one thread, which walks j in
// order, so repeated indices add up in the CPU's order and results are deterministic.
#include <cstdint>

#include "kernels/cuda/launch.cuh"

namespace shrink::kernels::cuda {

namespace {

// One thread per output element (o, j, i): out[o, j, i] = in[o, idx[o, j, i], i].
template <class T>
__global__ void gather_kernel(std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                              const T* in, std::int64_t n_idx, const std::int64_t* idx, T* out) {
  const std::int64_t n = outer * n_idx * inner;
  for (std::int64_t k = grid_start(); k < n; k += grid_step()) {
    const std::int64_t i = k % inner, o = k / (inner * n_idx);
    out[k] = in[(o * in_dim + idx[k]) * inner + i];
  }
}

// One thread per (o, i) column: out[o, idx[o, j, i], i] += src[o, j, i] for j in order.
template <class T>
__global__ void scatter_add_kernel(std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                                   std::int64_t n_idx, const std::int64_t* idx, const T* src,
                                   T* out) {
  const std::int64_t n = outer * inner;
  for (std::int64_t k = grid_start(); k < n; k += grid_step()) {
    const std::int64_t i = k % inner, o = k / inner;
    T* dst = out + o * in_dim * inner + i;
    const std::int64_t first = o * n_idx * inner + i;
    for (std::int64_t j = 0; j < n_idx; ++j)
      dst[idx[first + j * inner] * inner] += src[first + j * inner];
  }
}

__global__ void set_kernel(std::int64_t* at, std::int64_t value) { *at = value; }

// Each thread finds the first bad position of its grid-stride sequence; atomicMin keeps the
// smallest over all threads (positions are non-negative, so the unsigned order is theirs).
__global__ void find_out_of_range_kernel(std::int64_t n, const std::int64_t* idx,
                                         std::int64_t bound, std::int64_t* first_bad) {
  for (std::int64_t k = grid_start(); k < n; k += grid_step()) {
    const std::int64_t v = idx[k];
    if (v < 0 || v >= bound) {
      atomicMin(reinterpret_cast<unsigned long long*>(first_bad),
                static_cast<unsigned long long>(k));
      return;
    }
  }
}

}  // namespace

void CudaBackend::gather(DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                         const void* in, std::int64_t n_idx, const std::int64_t* idx, void* out) {
  const std::int64_t n = outer * n_idx * inner;
  if (n <= 0) return;
  dispatch_all(t, [&](auto zero) {
    using T = decltype(zero);
    gather_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        outer, in_dim, inner, static_cast<const T*>(in), n_idx, idx, static_cast<T*>(out));
  });
  check_launch("gather");
}

void CudaBackend::scatter_add(DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                              std::int64_t n_idx, const std::int64_t* idx, const void* src,
                              void* out) {
  const std::int64_t n = outer * inner;
  if (n <= 0 || n_idx <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    scatter_add_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        outer, in_dim, inner, n_idx, idx, static_cast<const T*>(src), static_cast<T*>(out));
  }, "scatter_add");
  check_launch("scatter_add");
}

void CudaBackend::find_out_of_range(std::int64_t n, const std::int64_t* idx, std::int64_t bound,
                                    std::int64_t* first_bad) {
  set_kernel<<<1, 1, 0, stream()>>>(first_bad, n);
  check_launch("find_out_of_range");
  if (n <= 0) return;
  find_out_of_range_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(n, idx, bound,
                                                                            first_bad);
  check_launch("find_out_of_range");
}

}  // namespace shrink::kernels::cuda
