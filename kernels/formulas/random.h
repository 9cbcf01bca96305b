// Philox-driven values, one element at a time, shared by kernels/cpu/random.cpp and
// kernels/cuda/random.cu: value i depends only on (seed, offset, i), so both devices draw
// the same numbers (uniform values and dropout masks bit for bit; normal values up to the
// last bit of the double-precision log/cos, which glibc and CUDA may round differently).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/formulas/hd.h"
#include "kernels/formulas/math.h"
#include "kernels/philox.h"

namespace shrink::kernels::formulas {

// Rounding to T can land on hi (a draw just below 1 becomes 1.0f): values that do are
// replaced by the largest T below hi, so the range stays [lo, hi). Formed on the host.
template <class T>
T uniform_below_hi(double lo, double hi) {
  return hi > lo ? std::nextafter(static_cast<T>(hi), static_cast<T>(lo)) : static_cast<T>(lo);
}

// Uniform in [lo, lo + span) from the i-th 32-bit draw: lo + span * u with one rounding.
// The *_from_draw forms take the 32-bit draw itself, for a caller that runs one Philox block
// per 4 consecutive values (kernels/cpu/random.cpp) instead of one per value.
template <class T>
SHRINK_HD T uniform_from_draw(std::uint32_t draw, double lo, double span, T hi, T below_hi) {
  const T v = static_cast<T>(m_fma(span, u32_to_unit_double(draw), lo));
  return v < hi ? v : below_hi;
}
template <class T>
SHRINK_HD T uniform_value(std::uint64_t seed, std::uint64_t offset, std::uint64_t i, double lo,
                          double span, T hi, T below_hi) {
  return uniform_from_draw<T>(philox_u32(seed, offset, i), lo, span, hi, below_hi);
}

// Box-Muller: value i uses the 32-bit draws 2i and 2i+1 (the caller reserved 2n).
template <class T>
SHRINK_HD T normal_from_draws(std::uint32_t first, std::uint32_t second, double mean, double stddev) {
  const double u1 = 1.0 - u32_to_unit_double(first);  // (0, 1]
  const double u2 = u32_to_unit_double(second);
  const double z = m_sqrt(-2.0 * m_log(u1)) * m_cos(6.283185307179586 * u2);
  return static_cast<T>(m_fma(stddev, z, mean));
}
template <class T>
SHRINK_HD T normal_value(std::uint64_t seed, std::uint64_t offset, std::uint64_t i, double mean,
                         double stddev) {
  return normal_from_draws<T>(philox_u32(seed, offset, 2 * i), philox_u32(seed, offset, 2 * i + 1), mean, stddev);
}

// Dropout's mask value: 1/(1-p) (`scale`) with probability 1-p (`keep_below`), else 0.
template <class T>
SHRINK_HD T dropout_from_draw(std::uint32_t draw, float keep_below, T scale) {
  return u32_to_unit_float(draw) < keep_below ? scale : T(0);
}
template <class T>
SHRINK_HD T dropout_mask(std::uint64_t seed, std::uint64_t offset, std::uint64_t i,
                         float keep_below, T scale) {
  return dropout_from_draw<T>(philox_u32(seed, offset, i), keep_below, scale);
}

}  // namespace shrink::kernels::formulas
