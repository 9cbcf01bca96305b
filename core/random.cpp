#include "core/random.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "core/error.h"
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

std::vector<std::int64_t> sample_indices(std::int64_t total, std::int64_t n, Generator& gen) {
  SHRINK_CHECK(total >= 0 && n >= 0, "sample_indices: negative count (", n, " of ", total, ")");
  n = std::min(n, total);
  std::vector<std::int64_t> order(static_cast<std::size_t>(total));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  for (std::int64_t i = 0; i < n; ++i)
    std::swap(order[static_cast<std::size_t>(i)],
              order[static_cast<std::size_t>(i + static_cast<std::int64_t>(gen.next_below(total - i)))]);
  order.resize(static_cast<std::size_t>(n));
  return order;
}

namespace {
std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
}  // namespace

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t index, std::uint64_t stream) {
  return mix(mix(seed ^ mix(index)) ^ stream);
}

}  // namespace shrink
