// SparseLinear: y = x W^T + b where W (out_features, in_features) is stored PHYSICALLY as
// compressed sparse rows, the layer unstructured pruning (SAP, LT, OS) rebuilds a Linear
// into. Only the surviving weights exist: "values" (nnz) is the trainable parameter,
// "row_ptr" (out + 1) and "col_idx" (nnz) are int64 buffers, "bias" (out) stays dense.
// Entries within a row are sorted by column. out_features is read from row_ptr's shape;
// in_features (the CSR's column count) is the one size no tensor shape carries.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "nn/module.h"

namespace shrink::nn {

class Linear;

class SparseLinear : public Module {
 public:
  // Decides whether the dense entry W[row, col] = value survives.
  using KeepFn = std::function<bool(std::int64_t row, std::int64_t col, double value)>;

  // From CSR tensors (checked: shapes, dtypes, monotone row_ptr, columns in range and
  // strictly increasing within a row); bias (out) or undefined.
  SparseLinear(std::int64_t in_features, Tensor row_ptr, Tensor col_idx, Tensor values,
               Tensor bias = Tensor());
  // A placeholder with `nnz` entries (zeros, a valid structure) for load_state_dict to fill.
  static std::shared_ptr<SparseLinear> with_capacity(std::int64_t in_features,
                                                     std::int64_t out_features,
                                                     std::int64_t nnz, bool bias,
                                                     DType dtype = DType::Float32);
  // The entries of a dense weight (out, in) for which `keep` holds; bias copied.
  static std::shared_ptr<SparseLinear> from_dense(const Tensor& weight, const Tensor& bias,
                                                  const KeepFn& keep);
  static std::shared_ptr<SparseLinear> from_dense(const Linear& dense, const KeepFn& keep);
  // Keeps the entries with |w| >= threshold (the SAP rule prunes |w| < thr).
  static std::shared_ptr<SparseLinear> from_dense(const Linear& dense, double threshold);
  // A smaller layer holding the stored entries for which keep(e) holds (values and bias
  // copied); how a further pruning round shrinks the CSR.
  std::shared_ptr<SparseLinear> pruned(const std::function<bool(std::int64_t entry)>& keep) const;

  std::string type_name() const override { return "SparseLinear"; }
  // The constructor's checks, on the tensors now in the slots (load_state_dict fills them
  // directly): row_ptr runs from 0 to nnz without decreasing, columns lie in
  // [0, in_features) and increase within each row, values and bias fit.
  void check_invariants() const override;
  std::string extra_repr() const override;
  // Opaque: an unstructured layer is not channel-pruned again.
  ChannelSpec channels() const override { return {}; }

  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return buffer("row_ptr").size(0) - 1; }
  std::int64_t nnz() const { return values().size(0); }
  double density() const;
  bool has_bias() const { return has_parameter("bias"); }
  const Tensor& values() const { return parameter("values"); }
  const Tensor& row_ptr() const { return buffer("row_ptr"); }
  const Tensor& col_idx() const { return buffer("col_idx"); }
  Tensor bias() const { return has_bias() ? parameter("bias") : Tensor(); }
  // The dense weight (out, in) with zeros where no entry is stored.
  Tensor to_dense() const;
  // Row of each stored entry (nnz), expanded from row_ptr.
  std::vector<std::int64_t> entry_rows() const;

 protected:
  // csr_linear counts 2*nnz per row (one multiply-add per stored weight) plus out for the
  // bias add (nn/flops.h).
  Tensor forward(const Tensor& x) override;

 private:
  std::int64_t in_features_;
};

}  // namespace shrink::nn
