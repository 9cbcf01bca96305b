// Inverted dropout: y = x * m / (1 - p), m ~ Bernoulli(1 - p), drawn from the seeded
// generator so a run is reproducible; backward multiplies by the same mask.
#include "core/ops/common.h"
#include "core/random.h"

namespace shrink {

using namespace ops_detail;

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check_floating("dropout", x);
  SHRINK_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0) return x;
  Tensor y = empty_like(x), mask = empty_like(x);
  const auto offset = gen.reserve(static_cast<std::uint64_t>(x.numel()));
  backend_of(x).dropout(x.dtype(), x.numel(), p, gen.seed(), offset, x.raw_data(), y.raw_data(),
                        mask.raw_data());
  if (needs_grad({&x}))
    record(y, "dropout", {x}, [mask](const Tensor& g) { return std::vector<Tensor>{mul(g, mask)}; });
  return y;
}

}  // namespace shrink
