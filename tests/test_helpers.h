// Helpers every test file shares: the GPU skip macro, random host vectors, and comparisons
// whose failure message names what was compared (the op), the worst element (flat and
// multi-index), both values and the tolerance.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "core/shrink.h"

// Skips the current test, saying why, where no CUDA GPU is present (or the build has no
// CUDA backend). CUDA tests live in files ending in _cuda.cpp (CTest label "cuda").
#define SHRINK_SKIP_WITHOUT_GPU()                                                            \
  if (!::shrink::cuda_available())                                                           \
  GTEST_SKIP() << "no CUDA GPU present: CUDA results are compared with the CPU only on a " \
                  "machine with a GPU (ctest -L cuda there)"

namespace shrink::testing {

// The message of the shrink::Error that f throws, or "" when it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

template <class T> constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::Float32;
  else if constexpr (std::is_same_v<T, double>) return DType::Float64;
  else return DType::Int64;
}

// n values uniform in [lo, hi), reproducible from `seed`.
template <class T>
std::vector<T> random_vec(std::int64_t n, double lo, double hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = static_cast<T>(d(rng));
  return v;
}

// A float32 tensor of shape `s`, values uniform in [lo, hi).
inline Tensor random_tensor(const Shape& s, std::uint64_t seed, double lo = -2, double hi = 2) {
  return Tensor::from_vector(random_vec<float>(numel(s), lo, hi, seed), s);
}

template <class T>
std::vector<double> to_doubles(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// A tensor's values as doubles, from any device and floating dtype.
inline std::vector<double> values_of(const Tensor& t) {
  return t.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
}

// |got - want| <= atol + rtol * |want| for every element (NaN fails unless both are NaN).
// `shape` only shapes the message's multi-index; empty means flat.
template <class T>
::testing::AssertionResult all_close(const std::string& what, const std::vector<T>& got,
                                     const std::vector<double>& want, double atol, double rtol,
                                     const Shape& shape = {}) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": " << got.size() << " values, expected "
                                         << want.size();
  double worst_excess = 0;
  std::int64_t worst = -1;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = want[i];
    if (std::isnan(g) && std::isnan(w)) continue;
    const double excess = std::abs(g - w) - (atol + rtol * std::abs(w));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worst_excess))) {
      worst_excess = std::isnan(excess) ? INFINITY : excess;
      worst = static_cast<std::int64_t>(i);
    }
  }
  if (worst < 0) return ::testing::AssertionSuccess();
  const double g = static_cast<double>(got[worst]), w = want[worst];
  std::ostringstream os;
  os.precision(17);
  os << what << ": worst element " << worst;
  if (!shape.empty()) os << " " << index_str(shape, worst);
  os << " of " << got.size() << ": got " << g << ", expected " << w << " (|diff| "
     << std::abs(g - w) << ", tolerance " << atol + rtol * std::abs(w) << ")";
  return ::testing::AssertionFailure() << os.str();
}

// Tensors: same shape, then values within atol + rtol * |want| (any devices, float dtypes).
inline ::testing::AssertionResult all_close(const std::string& what, const Tensor& got,
                                            const Tensor& want, double atol, double rtol) {
  if (got.defined() != want.defined())
    return ::testing::AssertionFailure() << what << ": one tensor is undefined (got "
                                         << got.defined() << ", expected " << want.defined() << ")";
  if (!got.defined()) return ::testing::AssertionSuccess();
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << what << ": shape " << shape_str(got.shape())
                                         << ", expected " << shape_str(want.shape());
  return all_close(what, values_of(got), values_of(want), atol, rtol, got.shape());
}

// Bitwise equality (NaNs included), naming the first mismatch.
template <class T>
::testing::AssertionResult all_same(const std::string& what, const std::vector<T>& got,
                                    const std::vector<T>& want) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": " << got.size() << " values, expected "
                                         << want.size();
  for (std::size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0)
      return ::testing::AssertionFailure() << what << ": first difference at " << i << ": got "
                                           << got[i] << ", expected " << want[i];
  return ::testing::AssertionSuccess();
}

}  // namespace shrink::testing
