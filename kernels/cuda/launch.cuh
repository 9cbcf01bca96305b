// Private to kernels/cuda (memory/elementwise/random/layout/gather/optim): dtype dispatch and the
// grid-stride loop every elementwise kernel uses.
#pragma once
#include <cstdint>

#include "kernels/cuda/cuda_backend_impl.h"

namespace shrink::kernels::cuda {

// The dtype dispatch is kernels/dtype_dispatch.h's (shared with the CPU and core/).
using kernels::dispatch_all;
using kernels::dispatch_floating;

// First index and step of a grid-stride loop: blocks_for caps the grid, so one thread may
// own several elements; 64-bit so tensors above 2^31 elements stay correct.
__device__ __forceinline__ std::int64_t grid_start() {
  return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::int64_t grid_step() {
  return static_cast<std::int64_t>(gridDim.x) * blockDim.x;
}

// Launch errors (bad configuration) surface at the launch, not at a later synchronisation.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

}  // namespace shrink::kernels::cuda
