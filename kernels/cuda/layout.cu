// Data movement: strided copies (transpose, permute, slice, concat, broadcast) and the
// gather/scatter pair index_select / index_add. Index arrays are device pointers; core/
// has checked their range before the call.
#include <cstdint>
#include <string>

#include "kernels/cuda/launch.cuh"

namespace shrink::kernels::cuda {

namespace {

// Shape and strides travel by value in the kernel's parameters (no device copy needed).
struct StridedDesc {
  int ndim = 0;
  std::int64_t shape[kMaxDims] = {};
  std::int64_t in_strides[kMaxDims] = {};
};

// One thread per output element; its contiguous index is decomposed into coordinates
// (last axis fastest) that give the input offset. Consecutive threads write consecutive
// outputs, so stores are always coalesced; loads are when the last input stride is 1.
template <class T>
__global__ void strided_copy_kernel(StridedDesc d, std::int64_t n, const T* in, T* out) {
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) {
    std::int64_t rem = i, off = 0;
    for (int k = d.ndim - 1; k >= 0; --k) {
      off += (rem % d.shape[k]) * d.in_strides[k];
      rem /= d.shape[k];
    }
    out[i] = in[off];
  }
}

// in: (outer, in_dim, inner), idx: (n_idx) -> out: (outer, n_idx, inner)
template <class T>
__global__ void index_select_kernel(std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                                    const T* in, std::int64_t n_idx, const std::int64_t* idx,
                                    T* out) {
  const std::int64_t n = outer * n_idx * inner;
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) {
    const std::int64_t c = i % inner;
    const std::int64_t j = (i / inner) % n_idx;
    const std::int64_t o = i / (inner * n_idx);
    out[i] = in[(o * in_dim + idx[j]) * inner + c];
  }
}

// grad_in (outer, in_dim, inner) += scatter of grad_out (outer, n_idx, inner) at idx.
// One thread per (outer, inner) column walks the n_idx entries in order: a repeated index
// is summed in the same order as on the CPU, with no atomics, so the result is deterministic
// and bit-identical to the CPU's. Threads own disjoint columns, so they never race.
template <class T>
__global__ void index_add_kernel(std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                                 std::int64_t n_idx, const std::int64_t* idx, const T* grad_out,
                                 T* grad_in) {
  const std::int64_t n = outer * inner;
  for (std::int64_t i = grid_start(); i < n; i += grid_step()) {
    const std::int64_t c = i % inner, o = i / inner;
    const T* src = grad_out + o * n_idx * inner + c;
    T* dst = grad_in + o * in_dim * inner + c;
    for (std::int64_t j = 0; j < n_idx; ++j) dst[idx[j] * inner] += src[j * inner];
  }
}

}  // namespace

void CudaBackend::strided_copy(DType t, int ndim, const std::int64_t* shape,
                               const std::int64_t* in_strides, const void* in, void* out) {
  if (ndim < 0 || ndim > kMaxDims)
    throw Error("cuda strided_copy: " + std::to_string(ndim) + " dimensions, at most " +
                std::to_string(kMaxDims) + " supported");
  StridedDesc d;
  d.ndim = ndim;
  std::int64_t n = 1;
  for (int k = 0; k < ndim; ++k) {
    d.shape[k] = shape[k];
    d.in_strides[k] = in_strides[k];
    n *= shape[k];
  }
  if (n == 0) return;
  dispatch_all(t, [&](auto zero) {
    using T = decltype(zero);
    strided_copy_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        d, n, static_cast<const T*>(in), static_cast<T*>(out));
  });
  check_launch("strided_copy");
}

void CudaBackend::index_select(DType t, std::int64_t outer, std::int64_t in_dim,
                               std::int64_t inner, const void* in, std::int64_t n_idx,
                               const std::int64_t* idx, void* out) {
  const std::int64_t n = outer * n_idx * inner;
  if (n <= 0) return;
  dispatch_all(t, [&](auto zero) {
    using T = decltype(zero);
    index_select_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        outer, in_dim, inner, static_cast<const T*>(in), n_idx, idx, static_cast<T*>(out));
  });
  check_launch("index_select");
}

void CudaBackend::index_add(DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                            std::int64_t n_idx, const std::int64_t* idx, const void* grad_out,
                            void* grad_in) {
  const std::int64_t n = outer * inner;
  if (n <= 0 || n_idx <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    index_add_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        outer, in_dim, inner, n_idx, idx, static_cast<const T*>(grad_out), static_cast<T*>(grad_in));
  });
  check_launch("index_add");
}

}  // namespace shrink::kernels::cuda
