// What the CPU kernel suites (test_kernels_cpu_*.cpp) share: the backend, a size above the
// OpenMP grain, the per-type tolerance, and the float/double typed suite `CpuKernels`.
// Each suite is its own executable, so defining the typed suite here is safe.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <type_traits>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/test_helpers.h"

namespace shrink::kernels {
namespace {

using testing::all_close;
using testing::dtype_of;
using testing::random_vec;
using testing::to_doubles;

inline Backend& cpu() { return backend(DeviceType::CPU); }

constexpr std::int64_t kBig = 40009;  // > kParallelGrain, odd
static_assert(kBig > cpu::kParallelGrain);

// Relative bound per element: rel * (1 + |want|), rel a few units of this.
template <class T>
double tol() { return std::is_same_v<T, float> ? 2e-6 : 1e-13; }

template <class T>
class CpuKernels : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CpuKernels, FloatTypes);

}  // namespace
}  // namespace shrink::kernels
