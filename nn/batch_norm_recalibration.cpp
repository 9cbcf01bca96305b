#include "nn/batch_norm_recalibration.h"

#include <algorithm>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/batch_norm.h"

namespace shrink::nn {

std::int64_t recalibrate_batch_norm(Module& model, const Tensor& inputs, std::int64_t batch_size) {
  SHRINK_CHECK(inputs.dim() >= 1 && inputs.size(0) >= 2, "recalibrate_batch_norm: needs at least 2 samples, got ",
               inputs.dim() >= 1 ? inputs.size(0) : 0, " (inputs ", shape_str(inputs.shape()), ")");
  SHRINK_CHECK(batch_size >= 2, "recalibrate_batch_norm: batch_size must be >= 2, got ", batch_size);
  std::vector<BatchNorm2d*> norms;
  for (auto& [path, m] : model.named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) norms.push_back(bn);
  if (norms.empty()) return 0;

  // Restores the modes and momenta however the passes end (a forward may throw).
  struct Restore {
    Module& model;
    const std::vector<BatchNorm2d*>& norms;
    bool was_training;
    std::vector<double> momenta;
    ~Restore() {
      for (std::size_t i = 0; i < norms.size(); ++i) norms[i]->set_momentum(momenta[i]);
      model.train(was_training);
    }
  } restore{model, norms, model.is_training(), {}};
  for (BatchNorm2d* bn : norms) restore.momenta.push_back(bn->momentum());

  const std::int64_t n = inputs.size(0);
  // floor(n / batch_size) passes (at least one) of equal size to within one sample: each has
  // batch_size to 2 batch_size - 1 samples (or all n), never a lone sample without a variance.
  const std::int64_t passes = std::max<std::int64_t>(1, n / batch_size);
  model.eval();
  for (BatchNorm2d* bn : norms) bn->train(true);
  NoGradGuard no_grad;
  for (std::int64_t p = 0; p < passes; ++p) {
    // running = (1 - 1/(p+1)) running + 1/(p+1) batch: the average of the passes so far
    // (the first pass replaces the stale statistics outright).
    for (BatchNorm2d* bn : norms) bn->set_momentum(1.0 / static_cast<double>(p + 1));
    model(slice(inputs, 0, n * p / passes, n * (p + 1) / passes));
  }
  return static_cast<std::int64_t>(norms.size());
}

}  // namespace shrink::nn
