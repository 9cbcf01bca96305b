#include "nn/csr.h"

#include "core/error.h"
#include "core/shape.h"

namespace shrink::nn::csr {

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


Entries kept_entries(const Tensor& row_ptr, const Tensor& col_idx, const Tensor& values,
                     const std::function<bool(std::int64_t entry)>& keep) {
  const auto rp = row_ptr.to(Device::cpu()).to_vector<std::int64_t>();
  const auto ci = col_idx.to(Device::cpu()).to_vector<std::int64_t>();
  const std::vector<double> v = host_doubles(values);
  Entries out;
  for (std::int64_t r = 0; r + 1 < static_cast<std::int64_t>(rp.size()); ++r) {
    for (std::int64_t e = rp[r]; e < rp[r + 1]; ++e)
      if (keep(e)) {
        out.col_idx.push_back(ci[e]);
        out.values.push_back(v[e]);
      }
    out.row_ptr.push_back(static_cast<std::int64_t>(out.col_idx.size()));
  }
  return out;
}

std::vector<std::int64_t> entry_rows(const Tensor& row_ptr) {
  const auto rp = row_ptr.to(Device::cpu()).to_vector<std::int64_t>();
  std::vector<std::int64_t> rows(static_cast<std::size_t>(rp.back()));
  for (std::int64_t r = 0; r + 1 < static_cast<std::int64_t>(rp.size()); ++r)
    for (std::int64_t e = rp[r]; e < rp[r + 1]; ++e) rows[e] = r;
  return rows;
}

}  // namespace shrink::nn::csr
