// Consumer refit: this project's own addition, beyond the seed papers (issue 9 item 2).
//
// After a group is cut, its consumer (the Linear or conv reading the group's units) still
// carries the weights it had for the full set of units. The refit re-solves them so that the consumer's
// output on the calibration batch matches the DENSE model's consumer output:
//   A  = [H_S, 1]  (N, k+1): the kept units' activations on the network as pruned so far,
//                            plus a column of ones for the bias (none when it has no bias)
//   Y  (N, out):   the dense model's consumer output on the same inputs (captured before any
//                  cut; rows of the consumer already cut by the next group are dropped)
//   W0 (out, k+1): the consumer's current [weight | bias]
//   W  = argmin ||A W^T - Y||^2 + lambda ||W - W0||^2
//      => (A^T A + lambda I) (W - W0)^T = A^T (Y - A W0^T)
// solved for the change W - W0 (so float32 rounding in the solve perturbs only the change)
// with the project's GEMM for A^T A and A^T (Y - A W0^T) and cholesky_solve (core/ops.h).
// With fewer samples than columns (N < k+1) the same change comes from the (N, N) system
// (A A^T + lambda I) Z = Y - A W0^T, W - W0 = (A^T Z)^T (the push-through identity).
// A conv consumer is the same problem on its unfolded input patches (prune/patches.h): A's
// rows are image positions (every stride-th, at most 2^17), its columns the kernel's
// (c, ky, kx), W the kernel as (out, in * kh * kw), Y the dense output map as rows.
//
// lambda = ridge * trace(A^T A) / min(k+1, N): `ridge` times the mean non-zero eigenvalue of
// the Gram matrix, so that its meaning does not depend on the data's scale, and so that a
// calibration batch smaller than the width (a Gram matrix of rank N < k+1) is regularised as
// strongly, relative to the directions the data constrains, as a large one. A huge ridge
// leaves W at W0; ridge -> 0 is the plain least-squares fit.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"
#include "nn/optim.h"
#include "prune/criteria.h"
#include "prune/group.h"

namespace shrink::prune {

// The dense model's consumer outputs, captured once before anything is cut.
struct DenseTargets {
  std::map<std::string, Tensor> outputs;     // consumer path -> its output (N, out), dense
  std::map<std::string, std::int64_t> units; // group name -> units before any cut
  // A conv consumer's output positions enter the fit as rows, every stride-th (at most
  // 2^17 rows); its output is kept as those rows, (rows, out).
  std::map<std::string, std::int64_t> strides;  // consumer path -> stride
};

// Runs the calibration inputs through `model` (eval mode, no gradients, `batch_size` samples
// at a time) and keeps the output of every layer reading a group. Throws naming the group
// when one of its consumers is neither a Linear nor an ungrouped Conv2d.
DenseTargets capture_dense_targets(nn::Module& model, const std::vector<Group>& groups, const Calibration& calib,
                                   std::int64_t batch_size = 256);

struct RefitResult {
  double error_before = 0;  // mean squared error against the dense outputs, before the refit
  double error_after = 0;   // and after (calibration batch; over every consumer's outputs)
  double lambda = 0;        // the ridge weight used (the largest, with several consumers)
};

// Refits every layer reading `group` on the network as it is now (see the top of this
// file): one, or each of a residual stream's consumers, each its own least squares.
// `groups` is every group of the model, so that the consumer's output rows that the next
// group already cut can be matched to the dense output's (Group::original). When an
// optimizer is given, the consumer's weight and bias restart as fresh parameters there:
// their state (momentum buffer, Adam moments, Adam's step count) is dropped, since the
// old moments describe weights that the refit replaced. ridge must be > 0.
RefitResult refit_consumer(nn::Module& model, const Group& group, const std::vector<Group>& groups,
                           const DenseTargets& dense, const Calibration& calib, double ridge,
                           nn::Optimizer* optimizer = nullptr, std::int64_t batch_size = 256);

}  // namespace shrink::prune
