// Value checks on the device that report a position in one int64 of device memory (the
// CPU twin is kernels/cpu/checks.cpp; the test of non-finiteness is the shared formula).
#include "kernels/cuda/launch.cuh"
#include "kernels/formulas/math.h"

namespace shrink::kernels::cuda {

namespace {

__global__ void set_position_kernel(std::int64_t* at, std::int64_t value) { *at = value; }

// Each thread finds the first bad position of its grid-stride sequence; atomicMin keeps the
// smallest over all threads (positions are non-negative, so the unsigned order is theirs).
template <class T>
__global__ void find_nonfinite_kernel(std::int64_t n, const T* x, std::int64_t* first_bad) {
  for (std::int64_t k = grid_start(); k < n; k += grid_step()) {
    if (formulas::is_nonfinite(x[k])) {
      atomicMin(reinterpret_cast<unsigned long long*>(first_bad),
                static_cast<unsigned long long>(k));
      return;
    }
  }
}

}  // namespace

void CudaBackend::find_nonfinite(DType t, std::int64_t n, const void* x, std::int64_t* first_bad) {
  const std::int64_t none = n > 0 ? n : 0;
  set_position_kernel<<<1, 1, 0, stream()>>>(first_bad, none);
  check_launch("find_nonfinite");
  if (t == DType::Int64 || n <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    find_nonfinite_kernel<T><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        n, static_cast<const T*>(x), first_bad);
  }, "find_nonfinite");
  check_launch("find_nonfinite");
}

}  // namespace shrink::kernels::cuda
