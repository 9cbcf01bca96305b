#include "nn/sparse_linear.h"

#include <cmath>
#include <string>

#include "core/ops.h"
#include "nn/csr.h"
#include "nn/linear.h"

namespace shrink::nn {

using csr::check_csr;
using csr::float_tensor;
using csr::host_doubles;
using csr::int64_tensor;


SparseLinear::SparseLinear(std::int64_t in_features, Tensor row_ptr, Tensor col_idx,
                           Tensor values, Tensor bias)
    : in_features_(in_features) {
  check_csr("SparseLinear: ", in_features, row_ptr, col_idx, values, bias);
  register_parameter("values", std::move(values));
  if (bias.defined()) register_parameter("bias", std::move(bias));
  register_buffer("row_ptr", std::move(row_ptr));
  register_buffer("col_idx", std::move(col_idx));
}

std::shared_ptr<SparseLinear> SparseLinear::with_capacity(std::int64_t in_features,
                                                          std::int64_t out_features,
                                                          std::int64_t nnz, bool bias,
                                                          DType dtype) {
  SHRINK_CHECK(in_features > 0 && out_features > 0 && nnz >= 0 && nnz <= in_features * out_features,
               "SparseLinear::with_capacity: nnz = ", nnz, " does not fit a (", out_features, ", ",
               in_features, ") weight");
  // Spread the entries over the rows, columns 0, 1, ... within each: a valid structure.
  std::vector<std::int64_t> rp(static_cast<std::size_t>(out_features + 1)), ci;
  for (std::int64_t r = 0; r < out_features; ++r) {
    rp[r + 1] = nnz * (r + 1) / out_features;
    for (std::int64_t c = 0; c < rp[r + 1] - rp[r]; ++c) ci.push_back(c);
  }
  return std::make_shared<SparseLinear>(in_features, int64_tensor(rp), int64_tensor(ci),
                                        Tensor::zeros({nnz}, dtype),
                                        bias ? Tensor::zeros({out_features}, dtype) : Tensor());
}

std::shared_ptr<SparseLinear> SparseLinear::from_dense(const Tensor& weight, const Tensor& bias,
                                                       const KeepFn& keep) {
  SHRINK_CHECK(weight.defined() && weight.dim() == 2, "SparseLinear::from_dense: weight must be "
               "(out_features, in_features)");
  const std::int64_t out = weight.size(0), in = weight.size(1);
  const std::vector<double> w = host_doubles(weight);
  std::vector<std::int64_t> rp{0}, ci;
  std::vector<double> v;
  for (std::int64_t r = 0; r < out; ++r) {
    for (std::int64_t c = 0; c < in; ++c)
      if (keep(r, c, w[r * in + c])) {
        ci.push_back(c);
        v.push_back(w[r * in + c]);
      }
    rp.push_back(static_cast<std::int64_t>(ci.size()));
  }
  return std::make_shared<SparseLinear>(
      in, int64_tensor(rp), int64_tensor(ci), float_tensor(v, weight.dtype()),
      bias.defined() ? bias.detach().to(Device::cpu()).clone() : Tensor());
}

std::shared_ptr<SparseLinear> SparseLinear::from_dense(const Linear& dense, const KeepFn& keep) {
  return from_dense(dense.weight(), dense.bias(), keep);
}

std::shared_ptr<SparseLinear> SparseLinear::from_dense(const Linear& dense, double threshold) {
  return from_dense(dense, [threshold](std::int64_t, std::int64_t, double w) {
    return std::abs(w) >= threshold;
  });
}

std::shared_ptr<SparseLinear> SparseLinear::pruned(
    const std::function<bool(std::int64_t entry)>& keep) const {
  const csr::Entries kept = csr::kept_entries(row_ptr(), col_idx(), values(), keep);
  return std::make_shared<SparseLinear>(in_features_, int64_tensor(kept.row_ptr), int64_tensor(kept.col_idx),
                                        float_tensor(kept.values, values().dtype()),
                                        has_bias() ? bias().detach().to(Device::cpu()).clone() : Tensor());
}

void SparseLinear::check_invariants() const {
  check_csr("", in_features_, row_ptr(), col_idx(), values(), bias());
}

std::string SparseLinear::extra_repr() const {
  return "in_features=" + std::to_string(in_features()) +
         ", out_features=" + std::to_string(out_features()) + ", nnz=" + std::to_string(nnz()) +
         ", bias=" + (has_bias() ? "true" : "false");
}

Tensor SparseLinear::forward(const Tensor& x) {
  return csr_linear(x, values(), row_ptr(), col_idx(), in_features_, bias());
}

double SparseLinear::density() const {
  return static_cast<double>(nnz()) / static_cast<double>(in_features() * out_features());
}

std::vector<std::int64_t> SparseLinear::entry_rows() const { return csr::entry_rows(row_ptr()); }

Tensor SparseLinear::to_dense() const {
  const auto ci = col_idx().to(Device::cpu()).to_vector<std::int64_t>();
  const auto rows = entry_rows();
  const std::vector<double> v = host_doubles(values());
  std::vector<double> dense(static_cast<std::size_t>(out_features() * in_features()), 0.0);
  for (std::size_t e = 0; e < v.size(); ++e) dense[rows[e] * in_features() + ci[e]] = v[e];
  return Tensor::from_vector(dense, {out_features(), in_features()}).to(values().dtype());
}

}  // namespace shrink::nn
