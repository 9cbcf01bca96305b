#include "nn/sparse_linear.h"

#include <cmath>
#include <string>

#include "core/ops.h"
#include "nn/linear.h"

namespace shrink::nn {

namespace {

Tensor int64_tensor(const std::vector<std::int64_t>& v) {
  return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())});
}

// values (nnz) as `dtype`, built in double on the host.
Tensor float_tensor(const std::vector<double>& v, DType dtype) {
  return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())}).to(dtype);
}

std::vector<double> host_doubles(const Tensor& t) {
  return t.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
}

// The CSR invariants that forward, to_dense, entry_rows and pruned rely on (each message
// starts with `who`). row_ptr is checked whole before any col_idx entry is read, so a
// corrupt row_ptr never indexes past col_idx (nor prints what lies beyond it).
void check_csr(const char* who, std::int64_t in_features, const Tensor& row_ptr,
               const Tensor& col_idx, const Tensor& values, const Tensor& bias) {
  SHRINK_CHECK(in_features > 0, who, "in_features must be > 0, got ", in_features);
  SHRINK_CHECK(row_ptr.defined() && col_idx.defined() && values.defined(), who,
               "row_ptr, col_idx and values must be defined");
  SHRINK_CHECK(row_ptr.dtype() == DType::Int64 && row_ptr.dim() == 1 && row_ptr.size(0) >= 2, who,
               "row_ptr must be int64 (out_features + 1) with out_features > 0, got ",
               dtype_name(row_ptr.dtype()), " ", shape_str(row_ptr.shape()));
  SHRINK_CHECK(col_idx.dtype() == DType::Int64 && col_idx.dim() == 1, who,
               "col_idx must be int64 (nnz), got ", dtype_name(col_idx.dtype()), " ",
               shape_str(col_idx.shape()));
  SHRINK_CHECK(values.dim() == 1 && values.size(0) == col_idx.size(0), who, "values ",
               shape_str(values.shape()), " must match col_idx ", shape_str(col_idx.shape()));
  const std::int64_t out = row_ptr.size(0) - 1, nnz = col_idx.size(0);
  const auto rp = row_ptr.to(Device::cpu()).to_vector<std::int64_t>();
  SHRINK_CHECK(rp[0] == 0 && rp[out] == nnz, who, "row_ptr must run from 0 to nnz = ", nnz,
               ", got ", rp[0], " .. ", rp[out]);
  for (std::int64_t r = 0; r < out; ++r)
    SHRINK_CHECK(rp[r] <= rp[r + 1], who, "row_ptr decreases at row ", r, " (row_ptr[", r,
                 "] = ", rp[r], ", row_ptr[", r + 1, "] = ", rp[r + 1], ")");
  // Now 0 <= rp[r] <= rp[r + 1] <= nnz: every e below indexes col_idx.
  const auto ci = col_idx.to(Device::cpu()).to_vector<std::int64_t>();
  for (std::int64_t r = 0; r < out; ++r)
    for (std::int64_t e = rp[r]; e < rp[r + 1]; ++e)
      SHRINK_CHECK(ci[e] >= 0 && ci[e] < in_features && (e == rp[r] || ci[e] > ci[e - 1]), who,
                   "col_idx[", e, "] = ", ci[e], " in row ", r, " is out of [0, ", in_features,
                   ") or not increasing");
  if (bias.defined())
    SHRINK_CHECK(bias.dim() == 1 && bias.size(0) == out && bias.dtype() == values.dtype(), who,
                 "bias ", shape_str(bias.shape()), " must be (", out, ") of ",
                 dtype_name(values.dtype()));
}

}  // namespace

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
  const auto rp = row_ptr().to(Device::cpu()).to_vector<std::int64_t>();
  const auto ci = col_idx().to(Device::cpu()).to_vector<std::int64_t>();
  const std::vector<double> v = host_doubles(values());
  std::vector<std::int64_t> new_rp{0}, new_ci;
  std::vector<double> new_v;
  for (std::int64_t r = 0; r + 1 < static_cast<std::int64_t>(rp.size()); ++r) {
    for (std::int64_t e = rp[r]; e < rp[r + 1]; ++e)
      if (keep(e)) {
        new_ci.push_back(ci[e]);
        new_v.push_back(v[e]);
      }
    new_rp.push_back(static_cast<std::int64_t>(new_ci.size()));
  }
  return std::make_shared<SparseLinear>(
      in_features_, int64_tensor(new_rp), int64_tensor(new_ci),
      float_tensor(new_v, values().dtype()),
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

std::vector<std::int64_t> SparseLinear::entry_rows() const {
  const auto rp = row_ptr().to(Device::cpu()).to_vector<std::int64_t>();
  std::vector<std::int64_t> rows(static_cast<std::size_t>(rp.back()));
  for (std::int64_t r = 0; r + 1 < static_cast<std::int64_t>(rp.size()); ++r)
    for (std::int64_t e = rp[r]; e < rp[r + 1]; ++e) rows[e] = r;
  return rows;
}

Tensor SparseLinear::to_dense() const {
  const auto ci = col_idx().to(Device::cpu()).to_vector<std::int64_t>();
  const auto rows = entry_rows();
  const std::vector<double> v = host_doubles(values());
  std::vector<double> dense(static_cast<std::size_t>(out_features() * in_features()), 0.0);
  for (std::size_t e = 0; e < v.size(); ++e) dense[rows[e] * in_features() + ci[e]] = v[e];
  return Tensor::from_vector(dense, {out_features(), in_features()}).to(values().dtype());
}

}  // namespace shrink::nn
