// Greedy forward selection, GFS (Ye, Gong, Nie, Zhu, Liu & Liu, "Good Subnetworks
// Provably Exist: Pruning via Greedy Forward Selection", ICML 2020), applied layer-wise
// as ML-GFS does: starting from S = {}, each step evaluates every unit j not in S by the
// loss of the subnetwork that keeps S ∪ {j}, and adds argmin_j L(S ∪ {j}). Kept units keep
// their weights (no reweighting), and S is a set (no repeats), so the result is a physical
// width of exactly `keep`.
//
// One evaluation = one forward pass of the restricted subnetwork on the N calibration
// samples, the consumer on the kept channels followed by the rest of the model to the
// logits, then the mean cross-entropy against calib.labels. The consumer is linear in its
// input channels, so its output on S ∪ {j} is Z_S + (contribution of channel j), with Z_S
// (bias included) kept from the previous steps:
//   - Linear consumer on (N, m): N*k multiply-adds for h_j w_j^T (k = consumer outputs),
//     plus the rest of the model on N rows and an N-row cross-entropy. Z_S is updated once
//     per accepted unit (N*k). Recomputing Z_S from scratch would add N*k*|S| per evaluation
//     and change nothing but the cost.
//   - any other consumer (conv): the consumer on H with the channels outside S ∪ {j} zeroed
//     (a full consumer forward on N samples), then the rest of the model.
// A step evaluates all m - |S| candidates, batched `chunk` at a time along a leading axis,
// so `keep` steps cost keep*(m - (keep-1)/2) evaluations.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/linear.h"
#include "nn/sequential.h"
#include "prune/criteria.h"
#include "prune/tap.h"

namespace shrink::prune {

namespace {

constexpr std::int64_t kChunkElements = std::int64_t{1} << 22;  // floats per candidate batch

// Mean cross-entropy of each of `c` candidates: logits (c*N, classes), labels (N).
std::vector<double> per_candidate_loss(const Tensor& logits, const std::vector<std::int64_t>& labels,
                                       std::int64_t c) {
  const auto n = static_cast<std::int64_t>(labels.size());
  SHRINK_CHECK(logits.dim() == 2 && logits.size(0) == c * n, "select_gfs: the model's output ",
               shape_str(logits.shape()), " is not (", c * n, ", classes) logits");
  const std::int64_t classes = logits.size(1);
  std::vector<std::int64_t> pick(static_cast<std::size_t>(c * n));
  for (std::int64_t r = 0; r < c * n; ++r) {
    const std::int64_t y = labels[static_cast<std::size_t>(r % n)];
    SHRINK_CHECK(y >= 0 && y < classes, "select_gfs: label ", y, " is outside [0, ", classes, ")");
    pick[static_cast<std::size_t>(r)] = r * classes + y;
  }
  const Tensor idx = Tensor::from_vector(pick, {c * n}, logits.device());
  const Tensor log_p = index_select(reshape(log_softmax(logits, -1), {c * n * classes}), 0, idx);
  const Tensor loss = mean(reshape(log_p, {c, n}), {1}) * -1.0;
  return loss.to(Device::cpu()).to(DType::Float64).to_vector<double>();
}

// Lowest loss among units not yet chosen (lower index on ties; NaN never wins).
std::int64_t best_candidate(const std::vector<double>& loss, const std::vector<bool>& chosen) {
  std::int64_t best = -1;
  for (std::size_t j = 0; j < loss.size(); ++j) {
    if (chosen[j] || std::isnan(loss[j])) continue;
    if (best < 0 || loss[j] < loss[static_cast<std::size_t>(best)]) best = static_cast<std::int64_t>(j);
  }
  if (best < 0)  // every candidate diverged: fall back to the first unchosen unit
    best = std::find(chosen.begin(), chosen.end(), false) - chosen.begin();
  return best;
}

}  // namespace

std::vector<std::int64_t> select_gfs(nn::Module& model, const Group& group, std::int64_t keep,
                                     const Calibration& calib) {
  const std::int64_t m = group_size(model, group);
  SHRINK_CHECK(keep >= 1 && keep <= m, "select_gfs: group '", group.name, "' has ", m,
               " units; keep must be in [1, ", m, "], got ", keep);
  SHRINK_CHECK(!group.consumer.empty(), "select_gfs: group '", group.name, "' has no consumer");
  // GFS pushes a batch of candidate subnetworks through the layers after the consumer at
  // once, which needs those layers to be a chain (prune/tap.h run_range).
  const auto* chain = dynamic_cast<const nn::Sequential*>(&model);
  bool top_level = false;
  if (chain)
    for (const auto& [name, layer] : chain->named_children()) top_level = top_level || name == group.consumer;
  SHRINK_CHECK(top_level && group.reads.size() == 1, "select_gfs: group '", group.name, "': its consumer '",
               group.consumer, "' is not a layer of a feed-forward chain (Sequential) read alone; GFS runs on "
               "small chains (LeNet-300-100, LeNet-5); use ispasp, taylor or magnitude on other graphs");
  const bool flattened = group.reads.front().block > 1;
  SHRINK_CHECK(calib.labels.defined() && calib.labels.dim() == 1 && calib.inputs.defined() &&
                   calib.labels.size(0) == calib.inputs.size(0),
               "select_gfs: needs one int64 label per calibration input");
  const std::int64_t n = calib.inputs.size(0);
  const auto labels = calib.labels.to(Device::cpu()).to_vector<std::int64_t>();

  EvalMode eval(model);
  NoGradGuard no_grad;
  const Tensor h = group_activation(model, group, calib.inputs, n).front();  // (N, m, ...)
  const std::int64_t axis = channel_axis(h, m);
  const auto names = chain_names(model);
  const std::string rest = next_in_chain(model, group.consumer);
  auto to_logits = [&](const Tensor& z) { return rest.empty() ? z : run_range(model, z, rest, names.back()); };

  nn::Module& consumer = *model.child(group.consumer);
  auto* linear = dynamic_cast<nn::Linear*>(&consumer);
  const bool fast = linear != nullptr && h.dim() == 2;
  const std::int64_t per_candidate = fast ? n * linear->out_features() : h.numel();
  const std::int64_t chunk = std::clamp<std::int64_t>(kChunkElements / per_candidate, 1, m);

  // Candidates' inputs and consumer columns, one per row, so a chunk is a contiguous slice.
  const Tensor h_rows = fast ? transpose(h, 0, 1) : Tensor();                  // (m, N)
  const Tensor w_rows = fast ? transpose(linear->weight(), 0, 1) : Tensor();  // (m, k)
  Tensor partial;  // Z_S: the consumer's output on S, bias included (fast path), (N, k)
  if (fast)
    partial = linear->has_bias() ? expand(reshape(linear->bias(), {1, linear->out_features()}),
                                          {n, linear->out_features()})
                                 : Tensor::zeros({n, linear->out_features()}, h.dtype(), h.device());
  std::vector<float> in_set(static_cast<std::size_t>(m), 0.0f);  // 1 on S (generic path)
  std::vector<bool> chosen(static_cast<std::size_t>(m), false);
  std::vector<std::int64_t> support;
  for (std::int64_t step = 0; step < keep; ++step) {
    std::vector<double> loss(static_cast<std::size_t>(m), std::numeric_limits<double>::infinity());
    for (std::int64_t start = 0; start < m; start += chunk) {
      const std::int64_t c = std::min(chunk, m - start);
      Tensor logits;
      if (fast) {
        // Z_S + h_j w_j^T for j in [start, start + c): (c, N, k).
        const Tensor hj = reshape(slice(h_rows, 0, start, start + c), {c, n, 1});
        const Tensor wj = reshape(slice(w_rows, 0, start, start + c), {c, 1, linear->out_features()});
        logits = to_logits(reshape(partial + hj * wj, {c * n, linear->out_features()}));
      } else {
        // Masks (c, 1, m at the channel axis, 1...): S plus candidate j in row j - start.
        std::vector<float> masks(static_cast<std::size_t>(c * m));
        for (std::int64_t r = 0; r < c; ++r) {
          std::copy(in_set.begin(), in_set.end(), masks.begin() + r * m);
          masks[static_cast<std::size_t>(r * m + start + r)] = 1.0f;
        }
        Shape mask_shape(static_cast<std::size_t>(h.dim()) + 1, 1);
        mask_shape[0] = c;
        mask_shape[static_cast<std::size_t>(axis) + 1] = m;
        Shape h_shape = h.shape();
        h_shape.insert(h_shape.begin(), 1);
        const Tensor mask = Tensor::from_vector(masks, mask_shape, h.device()).to(h.dtype());
        Shape batch_shape = h.shape();
        batch_shape[0] = c * n;
        const Tensor masked = reshape(reshape(h, h_shape) * mask, batch_shape);
        logits = to_logits(consumer(flattened ? reshape(masked, {c * n, -1}) : masked));
      }
      const std::vector<double> part = per_candidate_loss(logits, labels, c);
      std::copy(part.begin(), part.end(), loss.begin() + start);
    }
    const std::int64_t best = best_candidate(loss, chosen);
    chosen[static_cast<std::size_t>(best)] = true;
    in_set[static_cast<std::size_t>(best)] = 1.0f;
    support.push_back(best);
    if (fast)
      partial = partial + slice(h, 1, best, best + 1) * reshape(slice(linear->weight(), 1, best, best + 1),
                                                                 {1, linear->out_features()});
  }
  std::sort(support.begin(), support.end());
  return support;
}

}  // namespace shrink::prune
