// Value checks that report a position without copying data to the host (one int64 out):
// the finite-value scan behind training's fault checks and checkpoint loading.
#include <algorithm>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/formulas/math.h"

namespace shrink::kernels::cpu {

namespace {

constexpr std::int64_t kScanChunk = 1 << 14;  // elements per task: a vectorised count each

// Smallest i with x[i] non-finite, or n. The usual answer is "none", so each chunk counts
// its bad elements with a vectorised reduction (no early exit to break the vector loop)
// and only the first chunk with a count is searched element by element.
template <class T>
std::int64_t first_nonfinite(std::int64_t n, const T* x) {
  const std::int64_t chunks = (n + kScanChunk - 1) / kScanChunk;
  std::int64_t first_chunk = chunks;
#pragma omp parallel for schedule(static) reduction(min : first_chunk) if (n > kParallelGrain)
  for (std::int64_t c = 0; c < chunks; ++c) {
    const T* p = x + c * kScanChunk;
    const std::int64_t len = std::min(kScanChunk, n - c * kScanChunk);
    std::int64_t bad = 0;
#pragma omp simd reduction(+ : bad)
    for (std::int64_t i = 0; i < len; ++i) bad += formulas::is_nonfinite(p[i]) ? 1 : 0;
    if (bad > 0) first_chunk = std::min(first_chunk, c);
  }
  if (first_chunk == chunks) return n;
  const std::int64_t end = std::min(n, (first_chunk + 1) * kScanChunk);
  for (std::int64_t i = first_chunk * kScanChunk; i < end; ++i)
    if (formulas::is_nonfinite(x[i])) return i;
  return n;  // unreachable: the chunk counted a bad element
}

}  // namespace

void CpuBackend::find_nonfinite(DType t, std::int64_t n, const void* x, std::int64_t* first_bad) {
  if (t == DType::Int64 || n <= 0) {
    *first_bad = std::max<std::int64_t>(n, 0);
    return;
  }
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    *first_bad = first_nonfinite(n, static_cast<const T*>(x));
  }, "find_nonfinite");
}

}  // namespace shrink::kernels::cpu
