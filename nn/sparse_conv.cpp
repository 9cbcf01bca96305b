#include "nn/sparse_conv.h"

#include <string>

#include "core/ops.h"
#include "nn/csr.h"

namespace shrink::nn {

namespace {

// The CSR invariants, the geometry, and that each row reads its own group's channels.
void check_sparse_conv(const char* who, std::int64_t in_channels, const Conv2dGeometry& g, const Tensor& row_ptr,
                       const Tensor& col_idx, const Tensor& values, const Tensor& bias) {
  SHRINK_CHECK(in_channels > 0 && g.kernel_h > 0 && g.kernel_w > 0 && g.stride > 0 && g.dilation > 0 &&
                   g.padding >= 0 && g.groups > 0 && in_channels % g.groups == 0,
               who, "in_channels ", in_channels, ", kernel (", g.kernel_h, ", ", g.kernel_w, "), stride ", g.stride,
               ", padding ", g.padding, ", dilation ", g.dilation, ", groups ", g.groups, " is no convolution");
  const std::int64_t taps = g.kernel_h * g.kernel_w;
  csr::check_csr(who, in_channels * taps, row_ptr, col_idx, values, bias);
  const std::int64_t out = row_ptr.size(0) - 1;
  SHRINK_CHECK(out % g.groups == 0, who, out, " output channels are not divisible by groups ", g.groups);
  if (g.groups == 1) return;
  const auto rows = csr::entry_rows(row_ptr);
  const auto ci = col_idx.to(Device::cpu()).to_vector<std::int64_t>();
  const std::int64_t span = in_channels / g.groups * taps, out_per_group = out / g.groups;
  for (std::size_t e = 0; e < ci.size(); ++e)
    SHRINK_CHECK(ci[e] / span == rows[e] / out_per_group, who, "col_idx[", e, "] = ", ci[e], " of output channel ",
                 rows[e], " lies outside its group ", rows[e] / out_per_group, " of ", g.groups);
}

}  // namespace

SparseConv2d::SparseConv2d(std::int64_t in_channels, const Conv2dGeometry& g, Tensor row_ptr, Tensor col_idx,
                           Tensor values, Tensor bias)
    : in_channels_(in_channels), geometry_(g) {
  check_sparse_conv("SparseConv2d: ", in_channels, g, row_ptr, col_idx, values, bias);
  register_parameter("values", std::move(values));
  if (bias.defined()) register_parameter("bias", std::move(bias));
  register_buffer("row_ptr", std::move(row_ptr));
  register_buffer("col_idx", std::move(col_idx));
}

std::shared_ptr<SparseConv2d> SparseConv2d::with_capacity(std::int64_t in_channels, std::int64_t out_channels,
                                                          const Conv2dGeometry& g, std::int64_t nnz, bool bias,
                                                          DType dtype) {
  const std::int64_t per_row = g.groups > 0 && in_channels % g.groups == 0
                                   ? in_channels / g.groups * g.kernel_h * g.kernel_w
                                   : 0;
  SHRINK_CHECK(in_channels > 0 && out_channels > 0 && per_row > 0 && out_channels % g.groups == 0 && nnz >= 0 &&
                   (nnz + out_channels - 1) / out_channels <= per_row,  // nnz <= out per_row, no overflow
               "SparseConv2d::with_capacity: nnz = ", nnz, " does not fit a (", out_channels, ", ", in_channels, " / ",
               g.groups, ", ", g.kernel_h, ", ", g.kernel_w, ") weight");
  // Spread the entries over the rows, the first columns of each row's group: a valid structure.
  const std::int64_t out_per_group = out_channels / g.groups;
  std::vector<std::int64_t> rp(static_cast<std::size_t>(out_channels + 1)), ci;
  for (std::int64_t r = 0; r < out_channels; ++r) {
    rp[r + 1] = nnz * (r + 1) / out_channels;
    for (std::int64_t c = 0; c < rp[r + 1] - rp[r]; ++c) ci.push_back(r / out_per_group * per_row + c);
  }
  return std::make_shared<SparseConv2d>(in_channels, g, csr::int64_tensor(rp), csr::int64_tensor(ci),
                                        Tensor::zeros({nnz}, dtype),
                                        bias ? Tensor::zeros({out_channels}, dtype) : Tensor());
}

std::shared_ptr<SparseConv2d> SparseConv2d::from_dense(const Conv2d& dense, const KeepFn& keep) {
  const Conv2dGeometry g = dense.geometry();
  const Tensor& w = dense.weight();
  const std::int64_t out = w.size(0), per_group = w.size(1), taps = w.size(2) * w.size(3);
  const std::int64_t out_per_group = out / g.groups;
  const std::vector<double> values = csr::host_doubles(w);
  std::vector<std::int64_t> rp{0}, ci;
  std::vector<double> v;
  for (std::int64_t r = 0; r < out; ++r) {
    const std::int64_t first_column = r / out_per_group * per_group * taps;  // the group's first channel
    for (std::int64_t j = 0; j < per_group * taps; ++j)
      if (keep(r, first_column + j, values[r * per_group * taps + j])) {
        ci.push_back(first_column + j);
        v.push_back(values[r * per_group * taps + j]);
      }
    rp.push_back(static_cast<std::int64_t>(ci.size()));
  }
  return std::make_shared<SparseConv2d>(
      dense.in_channels(), g, csr::int64_tensor(rp), csr::int64_tensor(ci), csr::float_tensor(v, w.dtype()),
      dense.bias().defined() ? dense.bias().detach().to(Device::cpu()).clone() : Tensor());
}

std::shared_ptr<SparseConv2d> SparseConv2d::pruned(const std::function<bool(std::int64_t entry)>& keep) const {
  const csr::Entries kept = csr::kept_entries(row_ptr(), col_idx(), values(), keep);
  return std::make_shared<SparseConv2d>(in_channels_, geometry_, csr::int64_tensor(kept.row_ptr),
                                        csr::int64_tensor(kept.col_idx), csr::float_tensor(kept.values, values().dtype()),
                                        has_bias() ? bias().detach().to(Device::cpu()).clone() : Tensor());
}

void SparseConv2d::check_invariants() const {
  check_sparse_conv("", in_channels_, geometry_, row_ptr(), col_idx(), values(), bias());
}

std::string SparseConv2d::extra_repr() const {
  const Conv2dGeometry& g = geometry_;
  return std::to_string(in_channels_) + ", " + std::to_string(out_channels()) + ", kernel_size=(" +
         std::to_string(g.kernel_h) + ", " + std::to_string(g.kernel_w) + "), stride=" + std::to_string(g.stride) +
         ", padding=" + std::to_string(g.padding) + ", dilation=" + std::to_string(g.dilation) +
         ", groups=" + std::to_string(g.groups) + ", nnz=" + std::to_string(nnz()) +
         ", bias=" + (has_bias() ? "true" : "false");
}

double SparseConv2d::density() const {
  return static_cast<double>(nnz()) / static_cast<double>(out_channels() * columns() / geometry_.groups);
}

std::vector<std::int64_t> SparseConv2d::dense_offsets() const {
  const auto ci = col_idx().to(Device::cpu()).to_vector<std::int64_t>();
  const auto rows = csr::entry_rows(row_ptr());
  const std::int64_t row_length = columns() / geometry_.groups;  // (in / groups) kh kw
  std::vector<std::int64_t> offsets(ci.size());
  for (std::size_t e = 0; e < ci.size(); ++e) offsets[e] = rows[e] * row_length + ci[e] % row_length;
  return offsets;
}

Tensor SparseConv2d::to_dense() const {
  const std::vector<double> v = csr::host_doubles(values());
  const auto offsets = dense_offsets();
  const std::int64_t per_group = in_channels_ / geometry_.groups;
  std::vector<double> dense(static_cast<std::size_t>(out_channels() * per_group * geometry_.kernel_h *
                                                     geometry_.kernel_w),
                            0.0);
  for (std::size_t e = 0; e < v.size(); ++e) dense[offsets[e]] = v[e];
  return Tensor::from_vector(dense, {out_channels(), per_group, geometry_.kernel_h, geometry_.kernel_w})
      .to(values().dtype());
}

Tensor SparseConv2d::forward(const Tensor& x) {
  return csr_conv2d(x, values(), row_ptr(), col_idx(), geometry_.kernel_h, geometry_.kernel_w, bias(),
                    conv_options(geometry_));
}

}  // namespace shrink::nn
