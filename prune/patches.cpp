#include "prune/patches.h"

#include "core/error.h"
#include "core/ops.h"

namespace shrink::prune {

std::int64_t row_stride(std::int64_t total, std::int64_t max_rows) {
  SHRINK_CHECK(max_rows > 0, "row_stride: max_rows must be > 0");
  return std::max<std::int64_t>(1, (total + max_rows - 1) / max_rows);
}

Tensor unfold_patches(const Tensor& input, const nn::Conv2d& conv, std::int64_t stride) {
  const nn::Conv2dGeometry g = conv.geometry();
  SHRINK_CHECK(conv.groups() == 1, "unfold_patches: a grouped conv has no per-channel patches");
  SHRINK_CHECK(input.dim() == 4 && input.size(1) == conv.in_channels(), "unfold_patches: input ",
               shape_str(input.shape()), " does not fit a conv of ", conv.in_channels(), " input channels");
  const Tensor x = input.detach().to(Device::cpu()).to(DType::Float32).clone();
  const std::int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const std::int64_t oh = (h + 2 * g.padding - g.dilation * (g.kernel_h - 1) - 1) / g.stride + 1;
  const std::int64_t ow = (w + 2 * g.padding - g.dilation * (g.kernel_w - 1) - 1) / g.stride + 1;
  const std::int64_t cols = c * g.kernel_h * g.kernel_w, total = n * oh * ow;
  const std::int64_t rows = (total + stride - 1) / stride;
  Tensor patches = Tensor::zeros({rows, cols});
  const float* src = x.data<float>();
  float* dst = patches.data<float>();
#pragma omp parallel for
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t at = r * stride, b = at / (oh * ow), oy = at / ow % oh, ox = at % ow;
    float* out = dst + r * cols;
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
        const std::int64_t iy = oy * g.stride - g.padding + ky * g.dilation;
        if (iy < 0 || iy >= h) continue;
        for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
          const std::int64_t ix = ox * g.stride - g.padding + kx * g.dilation;
          if (ix >= 0 && ix < w) out[(ch * g.kernel_h + ky) * g.kernel_w + kx] = src[((b * c + ch) * h + iy) * w + ix];
        }
      }
  }
  return patches;
}

Tensor output_rows(const Tensor& output, std::int64_t stride) {
  if (output.dim() == 2) return output;
  if (output.dim() == 3) return reshape(output, {-1, output.size(2)});  // (N, T, out): a row per token
  SHRINK_CHECK(output.dim() == 4, "output_rows: expected (N, C, H, W), got ", shape_str(output.shape()));
  const Tensor rows = reshape(permute(output, {0, 2, 3, 1}).clone(), {-1, output.size(1)});
  if (stride == 1) return rows;
  const std::int64_t kept = (rows.size(0) + stride - 1) / stride;
  std::vector<std::int64_t> index(static_cast<std::size_t>(kept));
  for (std::int64_t r = 0; r < kept; ++r) index[static_cast<std::size_t>(r)] = r * stride;
  return index_select(rows, 0, Tensor::from_vector(index, {kept}, rows.device()));
}

}  // namespace shrink::prune
