// Reference per-unit norms over (outer, units, inner), in double precision. Plain loops; the
// tests' oracle for kernels/cpu/norms.cpp and kernels/cuda/norms.cu.
#pragma once
#include <cmath>
#include <cstdint>

namespace shrink::kernels::reference {

// out[u] = (sum_{o,i} |in[o, u, i]|^p)^(1/p), p = 1 or 2.
inline void unit_norm(int p, std::int64_t outer, std::int64_t units, std::int64_t inner,
                      const double* in, double* out) {
  for (std::int64_t u = 0; u < units; ++u) {
    double total = 0;
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i) {
        const double x = in[(o * units + u) * inner + i];
        total += p == 1 ? std::fabs(x) : x * x;
      }
    out[u] = p == 1 ? total : std::sqrt(total);
  }
}

}  // namespace shrink::kernels::reference
