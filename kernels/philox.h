// Philox4x32-10 counter-based generator (Salmon, Moraes, Dror, Shaw: "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011). Usable from host and CUDA device code, so the
// same (seed, offset) gives the same numbers on every backend.
#pragma once
#include <cstdint>

#include "kernels/formulas/hd.h"

namespace shrink::kernels {

struct Philox4 {
  std::uint32_t v[4];
};

SHRINK_HD Philox4 philox(std::uint64_t seed, std::uint64_t counter) {
  std::uint32_t c0 = static_cast<std::uint32_t>(counter), c1 = static_cast<std::uint32_t>(counter >> 32);
  std::uint32_t c2 = 0, c3 = 0;
  std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(0xD2511F53u) * c0;
    const std::uint64_t p1 = static_cast<std::uint64_t>(0xCD9E8D57u) * c2;
    const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<std::uint32_t>(p1);
    c3 = static_cast<std::uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// The i-th 32-bit value of the stream that starts at `offset` (a multiple of 4).
SHRINK_HD std::uint32_t philox_u32(std::uint64_t seed, std::uint64_t offset, std::uint64_t i) {
  const std::uint64_t index = offset + i;
  return philox(seed, index >> 2).v[index & 3];
}

// Uniform in [0, 1) with 24 bits (float) precision.
SHRINK_HD float u32_to_unit_float(std::uint32_t x) { return (x >> 8) * (1.0f / 16777216.0f); }
SHRINK_HD double u32_to_unit_double(std::uint32_t x) { return x * (1.0 / 4294967296.0); }

}  // namespace shrink::kernels
