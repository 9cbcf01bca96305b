// SparseConv2d: a Conv2d whose weight (out_channels, in_channels / groups, kh, kw) is stored
// PHYSICALLY as compressed sparse rows, the layer unstructured pruning (SAP, LT, OS) rebuilds a
// Conv2d into. Row r is output channel r; its columns index the unfolded input of ALL input
// channels, (c, ky, kx) -> (c kh + ky) kw + kx, with c in r's group (core/ops.h csr_conv2d).
// "values" (nnz) is the trainable parameter, "row_ptr" (out + 1) and "col_idx" (nnz) are int64
// buffers, "bias" (out) stays dense. out_channels is read from row_ptr's shape; in_channels and
// the geometry are what no tensor shape carries (the model spec stores them).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "nn/conv.h"
#include "nn/module.h"

namespace shrink::nn {

class SparseConv2d : public Module {
 public:
  // Decides whether the dense entry W[out, c, ky, kx] = value survives; `column` is its
  // unfolded column (c the layer's input channel, not the group's).
  using KeepFn = std::function<bool(std::int64_t out, std::int64_t column, double value)>;

  SparseConv2d(std::int64_t in_channels, const Conv2dGeometry& g, Tensor row_ptr, Tensor col_idx,
               Tensor values, Tensor bias = Tensor());
  // A placeholder with `nnz` entries (zeros, a valid structure) for load_state_dict to fill.
  static std::shared_ptr<SparseConv2d> with_capacity(std::int64_t in_channels, std::int64_t out_channels,
                                                     const Conv2dGeometry& g, std::int64_t nnz, bool bias,
                                                     DType dtype = DType::Float32);
  // The entries of a dense conv for which `keep` holds; bias copied.
  static std::shared_ptr<SparseConv2d> from_dense(const Conv2d& dense, const KeepFn& keep);
  // A smaller layer holding the stored entries for which keep(e) holds.
  std::shared_ptr<SparseConv2d> pruned(const std::function<bool(std::int64_t entry)>& keep) const;

  std::string type_name() const override { return "SparseConv2d"; }
  void check_invariants() const override;
  std::string extra_repr() const override;
  ChannelSpec channels() const override { return {}; }  // opaque to structured pruning

  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return buffer("row_ptr").size(0) - 1; }
  const Conv2dGeometry& geometry() const { return geometry_; }
  // Columns of the unfolded input: in_channels kh kw.
  std::int64_t columns() const { return in_channels_ * geometry_.kernel_h * geometry_.kernel_w; }
  std::int64_t nnz() const { return values().size(0); }
  // Stored entries over the dense weight's out (in / groups) kh kw.
  double density() const;
  bool has_bias() const { return has_parameter("bias"); }
  const Tensor& values() const { return parameter("values"); }
  const Tensor& row_ptr() const { return buffer("row_ptr"); }
  const Tensor& col_idx() const { return buffer("col_idx"); }
  Tensor bias() const { return has_bias() ? parameter("bias") : Tensor(); }
  // The dense weight (out, in / groups, kh, kw) with zeros where no entry is stored.
  Tensor to_dense() const;
  // Position of each stored entry in the dense weight's flat (out, in / groups, kh, kw) layout.
  std::vector<std::int64_t> dense_offsets() const;

 protected:
  // csr_conv2d counts 2 nnz per output position (+ 1 per output for the bias).
  Tensor forward(const Tensor& x) override;

 private:
  std::int64_t in_channels_;
  Conv2dGeometry geometry_;
};

}  // namespace shrink::nn
