// Private to kernels/cuda (parts A: memory/elementwise/random/layout): dtype dispatch and the
// grid-stride loop every elementwise kernel uses. Names differ from kernels/cpu's
// dispatch_* so a .cu file may define its own helpers without ambiguity.
#pragma once
#include <cstdint>

#include "kernels/cuda/cuda_backend_impl.h"

namespace shrink::kernels::cuda {

// Calls f(T{}) with T the C++ type of a floating dtype; int64 is rejected like on the CPU.
template <class F>
void visit_floating(DType t, F&& f) {
  if (t == DType::Float64) f(double{});
  else if (t == DType::Float32) f(float{});
  else throw Unsupported("floating-point kernel called with int64 data");
}

// Same, including int64 (for data movement kernels).
template <class F>
void visit_all(DType t, F&& f) {
  if (t == DType::Int64) f(std::int64_t{});
  else visit_floating(t, f);
}

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
