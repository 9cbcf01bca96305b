#include "core/random.h"

#include "kernels/philox.h"

namespace shrink {

std::uint64_t Generator::next_u64() {
  const std::uint64_t at = reserve(2);
  const auto lo = kernels::philox_u32(seed_, at, 0);
  const auto hi = kernels::philox_u32(seed_, at, 1);
  return (static_cast<std::uint64_t>(hi) << 32) | lo;
}

double Generator::next_double() { return (next_u64() >> 11) * (1.0 / 9007199254740992.0); }

std::uint64_t Generator::next_below(std::uint64_t bound) {
  if (bound <= 1) return 0;
  // Rejection sampling removes the modulo bias.
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % bound);
  std::uint64_t x;
  do {
    x = next_u64();
  } while (x >= limit);
  return x % bound;
}

}  // namespace shrink
