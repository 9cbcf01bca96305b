// The CUDA backend (built when nvcc is found). This header is plain C++ so that
// kernels/dispatch.cpp can include it without nvcc.
#pragma once
#include "kernels/backend.h"

namespace shrink::kernels::cuda {

// The process-wide CUDA backend (device 0).
Backend& backend();
// Number of visible GPUs; 0 when the driver or a device is missing (never throws).
int device_count();

}  // namespace shrink::kernels::cuda
