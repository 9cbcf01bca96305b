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
  SHRINK_CHECK(!group.consumer.empty(), "select_ispasp: group '", group.name, "' has no consumer");
  SHRINK_CHECK(group.reads.size() <= 1, "select_ispasp: group '", group.name, "' is read by ", group.reads.size(),
               " layers (a residual stream); i-SpaSP recovers the units of one block's hidden layer");
  SHRINK_CHECK(grad_enabled(), "select_ispasp: needs gradients, but a NoGradGuard is alive");
  std::vector<std::int64_t> support;
  if (keep == m) {
    for (std::int64_t j = 0; j < m; ++j) support.push_back(j);
    return support;
  }
  EvalMode eval(model);
  FrozenParameters frozen(model);  // dJ/dH only; the weights' gradients stay untouched
  nn::Module& consumer = *model.child(group.consumer);
  const std::string norm = group.reads.empty() ? "" : group.reads.front().norm_after;

  // H, stored once, and a_j. H is held whole anyway, so its forward runs in large batches:
  // the producer's weight is packed for the GEMM once per batch (a third of the GEMM's time
  // for ffn-10000 at 256 rows). `batch_size` bounds the consumer's forward/backward below.
  constexpr std::int64_t kActivationBatch = 4096;
  const std::vector<Tensor> hidden = group_activation(model, group, calib.inputs, kActivationBatch);
  const std::int64_t axis = channel_axis(hidden.front(), m);
  const IspaspBlock block{consumer, norm.empty() ? nullptr : model.child(norm).get(),
                          group.reads.empty() ? false : group.reads.front().block > 1};
  Scores magnitude(static_cast<std::size_t>(m), 0.0);
  for (const Tensor& hb : hidden) {
    const Scores part = sum_per_channel(hb, axis);
    for (std::int64_t j = 0; j < m; ++j) magnitude[static_cast<std::size_t>(j)] += part[static_cast<std::size_t>(j)];
  }

  const std::optional<ClosedFormPhi> closed_form = ClosedFormPhi::make(block, hidden, m);

  const std::int64_t candidates = std::min<std::int64_t>(2 * keep, m);
  for (int it = 0; it < iterations; ++it) {
    const Scores phi = closed_form ? (*closed_form)(support) : autograd_phi(block, hidden, axis, support, m, batch_size);
    // Identify (2s largest signed phi), merge, prune back to s by activation mass.
    Scores merged(static_cast<std::size_t>(m), -std::numeric_limits<double>::infinity());
    for (std::int64_t j : top_k(phi, candidates)) merged[static_cast<std::size_t>(j)] = magnitude[static_cast<std::size_t>(j)];
    for (std::int64_t j : support) merged[static_cast<std::size_t>(j)] = magnitude[static_cast<std::size_t>(j)];
    support = top_k(merged, keep);  // |T| >= 2s >= s; ties (e.g. dead units) by lower index
  }
  return support;
}

}  // namespace shrink::prune
