#include "nn/dropout.h"

#include "core/ops.h"

namespace shrink::nn {

Dropout::Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {
  SHRINK_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p);
}

std::string Dropout::extra_repr() const { return "p=" + std::to_string(p_); }

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training(), *gen_); }

}  // namespace shrink::nn
