// What the kernel-level CUDA-vs-CPU suites of the CNN kernels (test_kernels_conv_cuda.cpp,
// test_kernels_pool_bn_cuda.cpp) share: both backends, device copies of host vectors, and a
// per-element comparison against a bound. Each suite is its own executable.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/backend.h"
#include "tests/test_helpers.h"

namespace shrink::kernels {
namespace {

inline Backend& cpu() { return backend(DeviceType::CPU); }
inline Backend& gpu() { return backend(DeviceType::CUDA); }

template <class T> constexpr DType dt() {
  return std::is_same_v<T, float> ? DType::Float32 : DType::Float64;
}

// A device copy of a host vector; host() reads it back (copy_to_host synchronises).
// An empty vector holds no device memory (get() is null).
template <class T>
class DeviceVec {
 public:
  explicit DeviceVec(const std::vector<T>& h) : n_(h.size()), p_(gpu().allocate(bytes())) {
    gpu().copy_from_host(p_, h.data(), bytes());
  }
  explicit DeviceVec(std::size_t n) : DeviceVec(std::vector<T>(n)) {}
  DeviceVec(const DeviceVec&) = delete;
  DeviceVec& operator=(const DeviceVec&) = delete;
  ~DeviceVec() { gpu().deallocate(p_, bytes()); }
  T* get() const { return static_cast<T*>(p_); }
  std::vector<T> host() const {
    std::vector<T> h(n_);
    gpu().copy_to_host(h.data(), p_, bytes());
    return h;
  }

 private:
  std::size_t bytes() const { return n_ * sizeof(T); }
  std::size_t n_;
  void* p_;
};

// |got[i] - want[i]| <= scale * bound[i] for every i, NaN matching NaN.
template <class T>
void expect_within(const std::vector<T>& got, const std::vector<T>& want,
                   const std::vector<double>& bound, double scale, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  ASSERT_EQ(bound.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    if (std::isnan(w)) {
      ASSERT_TRUE(std::isnan(g)) << what << " at " << i << ": got " << g << ", want NaN";
      continue;
    }
    ASSERT_NEAR(g, w, scale * bound[i]) << what << " at " << i;
  }
}

// The default bound: 1 + |want| (a relative bound for values far from 0).
template <class T>
std::vector<double> magnitude_bound(const std::vector<T>& want) {
  std::vector<double> b(want.size());
  for (std::size_t i = 0; i < want.size(); ++i) b[i] = 1 + std::abs(static_cast<double>(want[i]));
  return b;
}

template <class T>
std::vector<T> absolute(std::vector<T> v) {
  for (auto& x : v) x = std::abs(x);
  return v;
}

}  // namespace
}  // namespace shrink::kernels
