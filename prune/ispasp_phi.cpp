// i-SpaSP's proxy phi, by autograd and in closed form (the math is in ispasp_phi.h).
#include "prune/ispasp_phi.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/batch_norm.h"
#include "nn/conv.h"
#include "nn/csr.h"
#include "nn/linear.h"

namespace shrink::prune {

namespace {

using nn::csr::host_doubles;

// Output size along one axis of a conv of geometry g whose kernel spans k taps there.
std::int64_t conv_out_size(std::int64_t in, std::int64_t k, const nn::Conv2dGeometry& g) {
  return (in + 2 * g.padding - g.dilation * (k - 1) - 1) / g.stride + 1;
}

// U_S = B_S(H[:, S]) for one minibatch, without gradients: H with the channels outside S
// zeroed, which equals B_S(H[:, S]) for any consumer linear in its input channels (conv,
// linear), since a zero channel contributes nothing.
Tensor restricted_output(const IspaspBlock& block, const Tensor& h, std::int64_t axis,
                         const std::vector<std::int64_t>& support, std::int64_t units) {
  NoGradGuard no_grad;
  std::vector<float> keep(static_cast<std::size_t>(units), 0.0f);
  for (std::int64_t j : support) keep[static_cast<std::size_t>(j)] = 1.0f;
  Shape mask_shape(static_cast<std::size_t>(h.dim()), 1);
  mask_shape[static_cast<std::size_t>(axis)] = units;
  const Tensor mask = Tensor::from_vector(keep, mask_shape, h.device()).to(h.dtype());
  return block(h * mask);
}

// sum_n H[n, ...] of every batch, as doubles: the shape of one sample.
std::vector<double> sample_sum(const std::vector<Tensor>& hidden) {
  std::vector<double> total;
  for (const Tensor& h : hidden) {
    const std::vector<double> part = host_doubles(sum(h.detach(), {0}));
    if (total.empty()) total.assign(part.size(), 0.0);
    for (std::size_t i = 0; i < part.size(); ++i) total[i] += part[i];
  }
  return total;
}

// The outputs [lo, hi) along one axis whose kernel tap k reads inside an input of size `in`:
// 0 <= o * stride + k * dilation - padding < in, with 0 <= o < out.
std::pair<std::int64_t, std::int64_t> tap_range(std::int64_t k, std::int64_t in, std::int64_t out,
                                                const nn::Conv2dGeometry& g) {
  const std::int64_t shift = k * g.dilation - g.padding;  // input index of output 0's tap k
  const std::int64_t lo = shift >= 0 ? 0 : (-shift + g.stride - 1) / g.stride;
  const std::int64_t last = in - 1 - shift;  // the largest o * stride allowed
  const std::int64_t hi = last < 0 ? 0 : std::min(out, last / g.stride + 1);
  return {std::min(lo, hi), hi};
}

// G[c][t'][t] of a conv (ispasp_phi.h) from S_H = sum_n H[n] (C, H, W): the sum of S_H over
// the positions tap t' = (ky', kx') reads for the outputs in tap t's range. Separable: rows
// first (per ky, ky'), then columns (per kx, kx').
std::vector<double> conv_tap_sums(const std::vector<double>& hsum, std::int64_t channels, std::int64_t in_h,
                                  std::int64_t in_w, const nn::Conv2dGeometry& g) {
  const std::int64_t kh = g.kernel_h, kw = g.kernel_w, taps = kh * kw;
  const std::int64_t out_h = conv_out_size(in_h, kh, g), out_w = conv_out_size(in_w, kw, g);
  std::vector<double> tap_sums(static_cast<std::size_t>(channels * taps * taps), 0.0);
  std::vector<double> columns(static_cast<std::size_t>(in_w));
  for (std::int64_t c = 0; c < channels; ++c) {
    const double* plane = hsum.data() + c * in_h * in_w;
    double* gc = tap_sums.data() + c * taps * taps;
    for (std::int64_t ky = 0; ky < kh; ++ky)
      for (std::int64_t ky2 = 0; ky2 < kh; ++ky2) {
        const auto [a_lo, a_hi] = tap_range(ky, in_h, out_h, g);
        const auto [b_lo, b_hi] = tap_range(ky2, in_h, out_h, g);
        std::fill(columns.begin(), columns.end(), 0.0);
        for (std::int64_t oy = std::max(a_lo, b_lo); oy < std::min(a_hi, b_hi); ++oy) {
          const double* row = plane + (oy * g.stride + ky2 * g.dilation - g.padding) * in_w;
          for (std::int64_t x = 0; x < in_w; ++x) columns[static_cast<std::size_t>(x)] += row[x];
        }
        for (std::int64_t kx = 0; kx < kw; ++kx)
          for (std::int64_t kx2 = 0; kx2 < kw; ++kx2) {
            const auto [c_lo, c_hi] = tap_range(kx, in_w, out_w, g);
            const auto [d_lo, d_hi] = tap_range(kx2, in_w, out_w, g);
            double s = 0.0;
            for (std::int64_t ox = std::max(c_lo, d_lo); ox < std::min(c_hi, d_hi); ++ox)
              s += columns[static_cast<std::size_t>(ox * g.stride + kx2 * g.dilation - g.padding)];
            gc[(ky2 * kw + kx2) * taps + ky * kw + kx] = s;
          }
      }
  }
  return tap_sums;
}

// A BatchNorm in eval mode as y = scale * x + shift per channel (identity without one), or
// nullopt for another kind of norm.
struct NormAffine {
  std::vector<double> scale, shift;
};
std::optional<NormAffine> norm_affine(nn::Module* norm, std::int64_t out) {
  NormAffine a{std::vector<double>(static_cast<std::size_t>(out), 1.0),
               std::vector<double>(static_cast<std::size_t>(out), 0.0)};
  if (!norm) return a;
  auto* bn = dynamic_cast<nn::BatchNorm2d*>(norm);
  if (!bn || bn->num_features() != out) return std::nullopt;
  const std::vector<double> gamma = host_doubles(bn->parameter("weight")), beta = host_doubles(bn->parameter("bias"));
  const std::vector<double> mean = host_doubles(bn->buffer("running_mean")),
                            var = host_doubles(bn->buffer("running_var"));
  for (std::size_t o = 0; o < a.scale.size(); ++o) {
    a.scale[o] = gamma[o] / std::sqrt(var[o] + bn->eps());
    a.shift[o] = beta[o] - a.scale[o] * mean[o];
  }
  return a;
}

}  // namespace

Tensor IspaspBlock::operator()(const Tensor& h) const {
  const Tensor y = consumer(flattened ? reshape(h, {h.size(0), -1}) : h);
  return norm ? (*norm)(y) : y;
}

Scores autograd_phi(const IspaspBlock& block, const std::vector<Tensor>& hidden, std::int64_t axis,
                    const std::vector<std::int64_t>& support, std::int64_t units, std::int64_t batch_size) {
  Scores phi(static_cast<std::size_t>(units), 0.0);
  std::vector<Tensor> batches;  // at most batch_size samples per forward/backward
  for (const Tensor& h : hidden)
    for (std::int64_t start = 0; start < h.size(0); start += batch_size)
      batches.push_back(shrink::slice(h, 0, start, std::min(h.size(0), start + batch_size)));
  for (const Tensor& hb : batches) {
    Tensor leaf = hb.detach();
    leaf.requires_grad_();
    const Tensor u = block(leaf);
    const Tensor v = support.empty() ? u : u - restricted_output(block, hb, axis, support, units);
    (0.5 * sum(v * v)).backward();
    const Scores part = sum_per_channel(leaf.grad(), axis);
    for (std::int64_t j = 0; j < units; ++j) phi[static_cast<std::size_t>(j)] += part[static_cast<std::size_t>(j)];
  }
  return phi;
}

std::optional<ClosedFormPhi> ClosedFormPhi::make(const IspaspBlock& block, const std::vector<Tensor>& hidden,
                                                 std::int64_t units) {
  if (hidden.empty()) return std::nullopt;
  const Tensor& h0 = hidden.front();
  std::int64_t samples = 0;
  for (const Tensor& h : hidden) samples += h.size(0);
  ClosedFormPhi f;
  f.units_ = units;
  std::vector<double> w;         // the consumer's weight as (out, in_per_group, taps_in)
  Tensor bias;                   // the consumer's, or undefined
  std::vector<double> tap_sums;  // G: (units, taps_in, taps_) (taps_ = 1 when every tap sees every output)
  std::vector<double> count;     // how many (sample, output position) pairs tap t reaches: taps_
  std::int64_t taps_in = 1;
  if (auto* linear = dynamic_cast<nn::Linear*>(&block.consumer)) {
    if (!block.flattened && (h0.dim() == 4 || h0.size(h0.dim() - 1) != units)) return std::nullopt;
    if (block.flattened && (h0.dim() != 4 || h0.size(1) != units)) return std::nullopt;
    taps_in = block.flattened ? h0.size(2) : 1;
    if (linear->in_features() != units * taps_in) return std::nullopt;
    f.out_ = linear->out_features();
    f.in_per_group_ = units;
    w = host_doubles(linear->weight());
    bias = linear->bias();
    // Sum over samples (and any positions before the last axis) per unit and tap.
    const std::vector<double> hsum = sample_sum(hidden);
    tap_sums.assign(static_cast<std::size_t>(units * taps_in), 0.0);
    for (std::size_t i = 0; i < hsum.size(); ++i) tap_sums[i % tap_sums.size()] += hsum[i];
    const auto rows_per_sample = static_cast<std::int64_t>(hsum.size() / tap_sums.size());
    count.assign(1, static_cast<double>(samples * rows_per_sample));
  } else if (auto* conv = dynamic_cast<nn::Conv2d*>(&block.consumer)) {
    if (block.flattened || h0.dim() != 4 || h0.size(1) != units || conv->in_channels() != units)
      return std::nullopt;
    const nn::Conv2dGeometry g = conv->geometry();
    f.out_ = conv->out_channels();
    f.groups_ = g.groups;
    f.in_per_group_ = units / g.groups;
    taps_in = f.taps_ = g.kernel_h * g.kernel_w;
    w = host_doubles(conv->weight());
    bias = conv->bias();
    const std::int64_t in_h = h0.size(2), in_w = h0.size(3);
    tap_sums = conv_tap_sums(sample_sum(hidden), units, in_h, in_w, g);
    const std::int64_t out_h = conv_out_size(in_h, g.kernel_h, g), out_w = conv_out_size(in_w, g.kernel_w, g);
    for (std::int64_t ky = 0; ky < g.kernel_h; ++ky)
      for (std::int64_t kx = 0; kx < g.kernel_w; ++kx) {
        const auto [y_lo, y_hi] = tap_range(ky, in_h, out_h, g);
        const auto [x_lo, x_hi] = tap_range(kx, in_w, out_w, g);
        count.push_back(static_cast<double>(samples * (y_hi - y_lo) * (x_hi - x_lo)));
      }
  } else {
    return std::nullopt;
  }
  const std::optional<NormAffine> norm = norm_affine(block.norm, f.out_);
  if (!norm) return std::nullopt;

  // weight_ (summed to taps_ taps), T = W contracted with G over the input tap t', and the
  // constant part of the first iteration (S empty: U_S = 0, so V keeps B's bias and the BN
  // shift, offset_o = scale_o * bias_o + shift_o, and dJ/dU' gains scale_o * offset_o at every
  // output position).
  const std::vector<double> b = bias.defined() ? host_doubles(bias) : std::vector<double>(f.out_, 0.0);
  const std::int64_t per_out = f.in_per_group_ * f.taps_, group_out = f.out_ / f.groups_;
  f.scale2_.resize(static_cast<std::size_t>(f.out_));
  f.weight_.assign(static_cast<std::size_t>(f.out_ * per_out), 0.0);
  f.contracted_.assign(f.weight_.size(), 0.0);
  f.empty_support_.assign(static_cast<std::size_t>(units), 0.0);
  for (std::int64_t o = 0; o < f.out_; ++o) {
    const auto uo = static_cast<std::size_t>(o);
    f.scale2_[uo] = norm->scale[uo] * norm->scale[uo];
    const double offset = norm->scale[uo] * (norm->scale[uo] * b[uo] + norm->shift[uo]);
    for (std::int64_t cl = 0; cl < f.in_per_group_; ++cl) {
      const std::int64_t c = (o / group_out) * f.in_per_group_ + cl;
      const double* wrow = w.data() + (o * f.in_per_group_ + cl) * taps_in;
      double* wout = f.weight_.data() + (o * f.in_per_group_ + cl) * f.taps_;
      double* tout = f.contracted_.data() + (o * f.in_per_group_ + cl) * f.taps_;
      const double* gc = tap_sums.data() + c * taps_in * f.taps_;
      for (std::int64_t t2 = 0; t2 < taps_in; ++t2) {
        wout[f.taps_ == 1 ? 0 : t2] += wrow[t2];
        for (std::int64_t t = 0; t < f.taps_; ++t) tout[t] += wrow[t2] * gc[t2 * f.taps_ + t];
      }
      for (std::int64_t t = 0; t < f.taps_; ++t)
        f.empty_support_[static_cast<std::size_t>(c)] += offset * wout[t] * count[static_cast<std::size_t>(t)];
    }
  }
  return f;
}

Scores ClosedFormPhi::operator()(const std::vector<std::int64_t>& support) const {
  std::vector<char> in_support(static_cast<std::size_t>(units_), 0);
  for (std::int64_t j : support) in_support[static_cast<std::size_t>(j)] = 1;
  Scores phi(static_cast<std::size_t>(units_), 0.0);
  std::vector<double> vsum(static_cast<std::size_t>(taps_));
  const std::int64_t group_out = out_ / groups_;
  for (std::int64_t o = 0; o < out_; ++o) {
    const std::int64_t first = (o / group_out) * in_per_group_;  // o's first input channel
    std::fill(vsum.begin(), vsum.end(), 0.0);
    for (std::int64_t cl = 0; cl < in_per_group_; ++cl) {
      if (in_support[static_cast<std::size_t>(first + cl)]) continue;
      const double* tin = contracted_.data() + (o * in_per_group_ + cl) * taps_;
      for (std::int64_t t = 0; t < taps_; ++t) vsum[static_cast<std::size_t>(t)] += tin[t];
    }
    for (std::int64_t cl = 0; cl < in_per_group_; ++cl) {
      const double* win = weight_.data() + (o * in_per_group_ + cl) * taps_;
      double s = 0.0;
      for (std::int64_t t = 0; t < taps_; ++t) s += win[t] * vsum[static_cast<std::size_t>(t)];
      phi[static_cast<std::size_t>(first + cl)] += scale2_[static_cast<std::size_t>(o)] * s;
    }
  }
  if (support.empty())
    for (std::size_t c = 0; c < phi.size(); ++c) phi[c] += empty_support_[c];
  return phi;
}

}  // namespace shrink::prune
