// The index formulas and the max rule of pooling, shared by kernels/cpu/pool.cpp and
// kernels/cuda/pool.cu (the loops around them differ: a plane per thread on the CPU, an
// output or an input element per thread on the GPU).
#pragma once
#include <cstdint>

#include "kernels/formulas/hd.h"

namespace shrink::kernels::formulas {

// PyTorch's adaptive window of output i out of `out` over `in` positions:
// [floor(i in / out), ceil((i + 1) in / out)).
SHRINK_HD std::int64_t adaptive_begin(std::int64_t i, std::int64_t in, std::int64_t out) {
  return i * in / out;
}
SHRINK_HD std::int64_t adaptive_end(std::int64_t i, std::int64_t in, std::int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}
// The outputs whose adaptive windows contain input position r are the adaptive window of r
// with the roles of `in` and `out` swapped: floor(o in / out) <= r < ceil((o + 1) in / out)
// holds exactly for o in [floor(r out / in), ceil((r + 1) out / in)).
SHRINK_HD std::int64_t adaptive_first_output(std::int64_t r, std::int64_t in, std::int64_t out) {
  return adaptive_begin(r, out, in);
}
SHRINK_HD std::int64_t adaptive_end_output(std::int64_t r, std::int64_t in, std::int64_t out) {
  return adaptive_end(r, out, in);
}

// The outputs [first, end) along one axis whose window (start o stride - pad, `span` wide)
// contains input position r: o stride - pad <= r <= o stride - pad + span - 1, clipped to
// [0, out).
struct OutputRange {
  std::int64_t first, end;
};
SHRINK_HD OutputRange windows_containing(std::int64_t r, std::int64_t span, std::int64_t stride,
                                         std::int64_t pad, std::int64_t out) {
  const std::int64_t hi = r + pad;           // o stride <= hi
  const std::int64_t lo = hi - (span - 1);   // o stride >= lo
  std::int64_t first = lo <= 0 ? 0 : (lo + stride - 1) / stride;
  std::int64_t end = hi < 0 ? 0 : hi / stride + 1;
  if (end > out) end = out;
  if (first > end) first = end;
  return {first, end};
}

// Max pooling's rule, visiting a window in row-major order from -inf: a value replaces the
// running maximum only when strictly larger (the first maximum wins ties) or NaN (a NaN beats
// any number; a later NaN replaces an earlier one, as PyTorch's `val > max || isnan(val)`).
template <class T>
SHRINK_HD bool max_pool_takes(T v, T best) {
  return (v > best) | (v != v);
}

}  // namespace shrink::kernels::formulas
