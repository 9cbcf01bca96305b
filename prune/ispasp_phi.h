// The proxy of i-SpaSP's identification step (ALGORITHMS.md §1.2): for a block B whose
// input H carries the group's m units and a support S,
//   U = B(H), U_S = B_S(H[:, S]), V = U - U_S, J = ½‖V‖_F²,
//   phi_j = sum_{n,pos} dJ/dH[n, j, pos]   (U_S held constant).
// Two ways to compute it, equal up to rounding (tests/test_ispasp_phi.cpp):
//  - autograd_phi: a forward and backward of B over all of H per call, for any B linear in
//    its input channels;
//  - ClosedFormPhi: for the blocks of the model families (a Linear, a Linear reading a
//    flattened map, a Conv2d of any geometry, each optionally followed by a BatchNorm in
//    eval mode), phi is a contraction of B's weight with sums of H fixed before the first
//    iteration, so each iteration costs O(out x in x taps) and never touches H.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "core/tensor.h"
#include "nn/module.h"
#include "prune/criteria.h"

namespace shrink::prune {

// B: the consumer (its flattened input restored from unit view), then its BatchNorm.
struct IspaspBlock {
  nn::Module& consumer;
  nn::Module* norm = nullptr;
  bool flattened = false;  // the consumer reads (N, m * block); H is in unit view (N, m, block, 1)
  Tensor operator()(const Tensor& h) const;
};

// phi by autograd, `batch_size` samples per forward/backward. `hidden`: H in batches;
// `axis`: its channel axis.
Scores autograd_phi(const IspaspBlock& block, const std::vector<Tensor>& hidden, std::int64_t axis,
                    const std::vector<std::int64_t>& support, std::int64_t units, std::int64_t batch_size);

// phi in closed form. With BN scale s_o = gamma_o / sqrt(var_o + eps) (1 without a BN) the
// bias and BN shift cancel in V, so V = s ⊙ B'(H ⊙ 1[not S]) with B' the bias-free
// consumer, and dJ/dH = B'^T(s² ⊙ V). Summing over samples and input positions:
//   phi_c = sum_{o reads c} s_o² sum_t W[o, c, t] Vsum[o, t],
//   Vsum[o, t] = sum_{c' not in S} sum_{t'} W[o, c', t'] G[c', t', t],
// where t, t' are kernel taps and G[c', t', t] sums H[:, c'] over the input positions tap t'
// reads for the outputs whose tap t lands inside the input (zero padding and stride make
// the two differ at the borders). For a Linear (one tap) G is sum_n H[n, c'], the
// activation mass; for a flattened read every tap sees the single output position, so
// Vsum has one entry per output. T[o, c', t] = sum_{t'} W[o, c', t'] G[c', t', t] is formed
// once; an iteration sums it over the complement of S. While S is empty U_S = 0, so V also
// keeps B's bias and the BN shift: a constant per output that adds a fixed vector to phi.
class ClosedFormPhi {
 public:
  // nullopt when the block is not one of the forms above (the caller falls back to autograd).
  static std::optional<ClosedFormPhi> make(const IspaspBlock& block, const std::vector<Tensor>& hidden,
                                           std::int64_t units);
  Scores operator()(const std::vector<std::int64_t>& support) const;

 private:
  std::int64_t out_ = 0, in_per_group_ = 0, groups_ = 1, taps_ = 1, units_ = 0;
  std::vector<double> scale2_;      // s_o², out_
  std::vector<double> weight_;      // W summed to taps_ taps: (out_, in_per_group_, taps_)
  std::vector<double> contracted_;  // T: (out_, in_per_group_, taps_)
  std::vector<double> empty_support_;  // what B's bias and the BN shift add to phi while S is empty: units_
};

}  // namespace shrink::prune
