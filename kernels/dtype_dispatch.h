// The one dtype dispatch: turns a runtime DType into a C++ type for a generic lambda.
// Header-only and free of CUDA syntax, so CPU kernels (.cpp), CUDA launchers (.cu host code)
// and core/ all use this same helper. It runs on the host (where the dtype is known); the
// per-element code it selects may be host or device code.
#pragma once
#include <cstdint>
#include <string>

#include "kernels/error.h"
#include "kernels/types.h"

namespace shrink::kernels {

// Thrown by a backend for an operation it does not provide (a shrink::Error, so callers
// see one exception type).
struct Unsupported : Error {
  using Error::Error;
};

// Calls f(T{}) with T the C++ type of a floating dtype (float or double); int64 data is
// rejected with an Unsupported naming `kernel`.
template <class F>
void dispatch_floating(DType t, F&& f, const char* kernel = "floating-point kernel") {
  if (t == DType::Float64) f(double{});
  else if (t == DType::Float32) f(float{});
  else throw Unsupported(std::string(kernel) + " called with " + dtype_name(t) + " data");
}

// Same, including int64 (for data movement kernels).
template <class F>
void dispatch_all(DType t, F&& f) {
  if (t == DType::Int64) f(std::int64_t{});
  else dispatch_floating(t, f);
}

}  // namespace shrink::kernels
