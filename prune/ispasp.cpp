// i-SpaSP (Wolfe & Kyrillidis, arXiv 2112.04905): CoSaMP-style recovery of the support S
// of a two-layer block's hidden units, ALGORITHMS.md §1.1-1.2.
//   A = model input .. what the consumer reads, H = A(X)  (N, m[, positions]; a flattened
//       read in unit view, (N, m, H*W, 1))
//   B = the consumer (Linear or conv, its input channels are the group's units), then its
//       BatchNorm in eval mode when a BatchNorm is the consumer's only reader (§1.3: the
//       residual of a ResNet block is measured after conv2 + BN2, before the add)
//   U = B(H), U_S = B_S(H[:, S]), V = U - U_S, J = ½‖V‖_F²
//   phi_j = sum_{n,pos} dJ/dH[n, j, pos]   (signed; U_S held constant)
//   a_j   = sum_{n,pos} H[n, j, pos]
// Each iteration: Omega = 2s largest phi, T = Omega ∪ S, S = the s members of T with the
// largest a. A fixed number of iterations, no early stop, as in the official code.
// A residual stream (beyond the paper) has one B per layer reading it: J, phi and a are sums.
//
// phi is computed in closed form from sums of H fixed before the first iteration for the
// blocks of the model families (prune/ispasp_phi.h), by autograd for any other consumer.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "prune/criteria.h"
#include "prune/ispasp_phi.h"

namespace shrink::prune {

std::vector<std::int64_t> select_ispasp(nn::Module& model, const Group& group, std::int64_t keep,
                                        const Calibration& calib, int iterations,
                                        std::int64_t batch_size) {
  const std::int64_t m = group_size(model, group);
  SHRINK_CHECK(keep >= 1 && keep <= m, "select_ispasp: group '", group.name, "' has ", m,
               " units; keep must be in [1, ", m, "], got ", keep);
  SHRINK_CHECK(iterations >= 1, "select_ispasp: iterations must be >= 1, got ", iterations);
  SHRINK_CHECK(!group.reads.empty(), "select_ispasp: group '", group.name, "' has no consumer");
  SHRINK_CHECK(grad_enabled(), "select_ispasp: needs gradients, but a NoGradGuard is alive");
  std::vector<std::int64_t> support;
  if (keep == m) {
    for (std::int64_t j = 0; j < m; ++j) support.push_back(j);
    return support;
  }
  EvalMode eval(model);
  FrozenParameters frozen(model);  // dJ/dH only; the weights' gradients stay untouched

  // One block B per layer reading the group. A block-inner group has one. A residual stream
  // (--prune-residual; the paper's code never prunes it, §1.3) has every layer reading it, each
  // with its own H (the stream after the adds before it) and its own BatchNorm: J sums their
  // residuals ½‖V_c‖², so phi is the sum of their phis and a_j the sum of their masses.
  struct Part {
    IspaspBlock block;
    std::vector<Tensor> hidden;  // kept only for autograd_phi
    std::int64_t axis = 1;
    std::optional<ClosedFormPhi> closed_form;
  };
  std::vector<Part> parts;
  Scores magnitude(static_cast<std::size_t>(m), 0.0);
  for (const ConsumerRead& read : group.reads) {
    // H, stored once, and a_j. H is held whole anyway, so its forward runs in large batches:
    // the producer's weight is packed for the GEMM once per batch (a third of the GEMM's time
    // for ffn-10000 at 256 rows). `batch_size` bounds the consumer's forward/backward below.
    constexpr std::int64_t kActivationBatch = 4096;
    std::vector<Tensor> hidden = group_activation(model, consumer_view(group, read), calib.inputs, kActivationBatch);
    const std::int64_t axis = channel_axis(hidden.front(), m);
    const IspaspBlock block{*model.child(read.consumer),
                            read.norm_after.empty() ? nullptr : model.child(read.norm_after).get(), read.block > 1};
    for (const Tensor& hb : hidden) {
      const Scores part = sum_per_channel(hb, axis);
      for (std::int64_t j = 0; j < m; ++j) magnitude[static_cast<std::size_t>(j)] += part[static_cast<std::size_t>(j)];
    }
    std::optional<ClosedFormPhi> closed_form = ClosedFormPhi::make(block, hidden, m);
    if (closed_form) hidden.clear();  // a stream's consumers would otherwise each hold their H
    parts.push_back(Part{block, std::move(hidden), axis, std::move(closed_form)});
  }
  const auto phi_of = [&](const std::vector<std::int64_t>& s) {
    Scores phi(static_cast<std::size_t>(m), 0.0);
    for (const Part& p : parts) {
      const Scores c = p.closed_form ? (*p.closed_form)(s) : autograd_phi(p.block, p.hidden, p.axis, s, m, batch_size);
      for (std::size_t j = 0; j < phi.size(); ++j) phi[j] += c[j];
    }
    return phi;
  };

  const std::int64_t candidates = std::min<std::int64_t>(2 * keep, m);
  for (int it = 0; it < iterations; ++it) {
    const Scores phi = phi_of(support);
    // Identify (2s largest signed phi), merge, prune back to s by activation mass.
    Scores merged(static_cast<std::size_t>(m), -std::numeric_limits<double>::infinity());
    for (std::int64_t j : top_k(phi, candidates)) merged[static_cast<std::size_t>(j)] = magnitude[static_cast<std::size_t>(j)];
    for (std::int64_t j : support) merged[static_cast<std::size_t>(j)] = magnitude[static_cast<std::size_t>(j)];
    support = top_k(merged, keep);  // |T| >= 2s >= s; ties (e.g. dead units) by lower index
  }
  return support;
}

}  // namespace shrink::prune
