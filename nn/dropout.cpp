#include "nn/dropout.h"

#include "core/ops.h"

namespace shrink::nn {

namespace {
double checked(double p) {
  SHRINK_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p);
  return p;
}
}  // namespace

Dropout::Dropout(double p, Generator& gen) : p_(checked(p)), gen_(gen.next_u64()) {}

std::string Dropout::extra_repr() const { return "p=" + std::to_string(p_); }

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p_, is_training(), gen_); }

}  // namespace shrink::nn
