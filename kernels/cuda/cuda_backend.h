// The CUDA backend (built when nvcc is found). This header is plain C++ so that
// kernels/dispatch.cpp can include it without nvcc.
#pragma once
#include "kernels/backend.h"

namespace shrink::kernels::cuda {

// The process-wide CUDA backend (device 0).
Backend& backend();
// Number of visible GPUs; 0 when the driver or a device is missing (never throws).
int device_count();

// The caching device allocator's state, for tests and benchmarks that show a steady-state
// training loop allocates nothing new: bytes idle in the cache, and cudaMalloc calls so far.
std::size_t cached_bytes();
std::size_t cuda_malloc_calls();

}  // namespace shrink::kernels::cuda
