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
// For a Linear B with weight W (k x m), dJ/dH = V W, so phi = (sum_n V[n, :]) W: U is
// computed once, and an iteration costs only U_S on the support (N s k) and one (1 x k)(k x m)
// product, instead of a forward and backward of B over all m units. Any other block (a
// conv, a BN after it, a Linear reading a flattened map) runs that forward and backward per
// iteration through autograd (minibatched).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/linear.h"
#include "prune/criteria.h"

namespace shrink::prune {

namespace {

// B: the consumer, with its flattened input restored from unit view, then its BatchNorm.
struct Block {
  nn::Module& consumer;
  nn::Module* norm = nullptr;
  bool flattened = false;  // the consumer reads (N, m * block); H is in unit view
  Tensor operator()(const Tensor& h) const {
    const Tensor y = consumer(flattened ? reshape(h, {h.size(0), -1}) : h);
    return norm ? (*norm)(y) : y;
  }
};

// U_S = B_S(H[:, S]) for one minibatch, without gradients. A Linear is restricted
// physically (its kept columns times the kept channels); another consumer gets H with the
// channels outside S zeroed, which equals B_S(H[:, S]) for any consumer linear in its input
// channels (conv, linear), since a zero channel contributes nothing.
Tensor restricted_output(const Block& block, const Tensor& h, std::int64_t axis,
                         const std::vector<std::int64_t>& support, std::int64_t units) {
  NoGradGuard no_grad;
  const auto s = static_cast<std::int64_t>(support.size());
  auto* linear = dynamic_cast<nn::Linear*>(&block.consumer);
  if (linear && !block.norm && !block.flattened && axis == h.dim() - 1) {
    const Tensor idx = Tensor::from_vector(support, {s}, h.device());
    return shrink::linear(index_select(h, axis, idx), index_select(linear->weight(), 1, idx),
                          linear->bias());
  }
  std::vector<float> keep(static_cast<std::size_t>(units), 0.0f);
  for (std::int64_t j : support) keep[static_cast<std::size_t>(j)] = 1.0f;
  Shape mask_shape(static_cast<std::size_t>(h.dim()), 1);
  mask_shape[static_cast<std::size_t>(axis)] = units;
  const Tensor mask = Tensor::from_vector(keep, mask_shape, h.device()).to(h.dtype());
  return block(h * mask);
}

// phi of every iteration for a Linear consumer acting on H's last axis, by the closed form
// phi = (sum over rows of U - U_S) W; U (bias included, as the autograd path) is kept per
// minibatch. Sums are in float64.
class LinearPhi {
 public:
  LinearPhi(const Block& block, nn::Linear& consumer, const std::vector<Tensor>& hidden)
      : block_(block), hidden_(hidden) {
    NoGradGuard no_grad;
    weight64_ = consumer.weight().to(DType::Float64);
    for (const Tensor& hb : hidden) full_.push_back(consumer(hb));
  }

  Scores operator()(const std::vector<std::int64_t>& support) const {
    NoGradGuard no_grad;
    const std::int64_t k = weight64_.size(0), units = weight64_.size(1);
    Tensor v_sum = Tensor::zeros({1, k}, DType::Float64, weight64_.device());
    for (std::size_t b = 0; b < hidden_.size(); ++b) {
      const Tensor& hb = hidden_[b];
      const Tensor v = support.empty() ? full_[b]
                                       : full_[b] - restricted_output(block_, hb, hb.dim() - 1, support, units);
      v_sum = v_sum + sum(reshape(v, {-1, k}).to(DType::Float64), {0}, /*keepdim=*/true);
    }
    return matmul(v_sum, weight64_).to(Device::cpu()).to_vector<double>();
  }

 private:
  const Block& block_;
  const std::vector<Tensor>& hidden_;  // H per minibatch, owned by select_ispasp
  Tensor weight64_;
  std::vector<Tensor> full_;
};

// phi of one iteration for any consumer linear in its input channels, by autograd:
// dJ/dH of J = ½‖U - U_S‖² with U_S held constant, summed per channel.
Scores autograd_phi(const Block& block, const std::vector<Tensor>& hidden, std::int64_t axis,
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

}  // namespace

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
  const Block block{consumer, norm.empty() ? nullptr : model.child(norm).get(),
                    group.reads.empty() ? false : group.reads.front().block > 1};
  Scores magnitude(static_cast<std::size_t>(m), 0.0);
  for (const Tensor& hb : hidden) {
    const Scores part = sum_per_channel(hb, axis);
    for (std::int64_t j = 0; j < m; ++j) magnitude[static_cast<std::size_t>(j)] += part[static_cast<std::size_t>(j)];
  }

  std::optional<LinearPhi> linear_phi;
  if (auto* linear = dynamic_cast<nn::Linear*>(&consumer);
      linear && !block.norm && !block.flattened && axis == hidden.front().dim() - 1)
    linear_phi.emplace(block, *linear, hidden);

  const std::int64_t candidates = std::min<std::int64_t>(2 * keep, m);
  for (int it = 0; it < iterations; ++it) {
    const Scores phi = linear_phi ? (*linear_phi)(support) : autograd_phi(block, hidden, axis, support, m, batch_size);
    // Identify (2s largest signed phi), merge, prune back to s by activation mass.
    Scores merged(static_cast<std::size_t>(m), -std::numeric_limits<double>::infinity());
    for (std::int64_t j : top_k(phi, candidates)) merged[static_cast<std::size_t>(j)] = magnitude[static_cast<std::size_t>(j)];
    for (std::int64_t j : support) merged[static_cast<std::size_t>(j)] = magnitude[static_cast<std::size_t>(j)];
    support = top_k(merged, keep);  // |T| >= 2s >= s; ties (e.g. dead units) by lower index
  }
  return support;
}

}  // namespace shrink::prune
