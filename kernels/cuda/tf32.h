// TF32 tensor-core math for float32 GEMMs on the CUDA backend. Off by default so that CPU
// and GPU agree to float32 rounding (TF32 keeps 10 mantissa bits: ~1e-3 relative error);
// SHRINK_ALLOW_TF32=1 in the environment turns it on at start-up, set_allow_tf32 at any
// time. Plain C++ so that tools, tests and benchmarks can include it; only defined in a
// CUDA build (guard callers with SHRINK_WITH_CUDA).
#pragma once

namespace shrink::kernels::cuda {

void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace shrink::kernels::cuda
