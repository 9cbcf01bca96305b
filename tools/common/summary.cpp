#include "tools/common/summary.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "core/ops.h"
#include "nn/flops.h"
#include "nn/fold_batch_norm.h"
#include "nn/models.h"
#include "nn/training.h"
#include "tools/common/cli.h"

namespace shrink::tools {

ModelSummary summarize(nn::Module& model, const nlohmann::json& spec,
                       const datasets::Dataset& data, Device device, std::int64_t batch_size,
                       bool accuracy, bool latency) {
  ModelSummary s;
  if (accuracy) {
    datasets::DataLoader loader(data.test, batch_size, false, 0);
    loader.start_epoch(0);
    const nn::EpochResult result = nn::evaluate(model, batches_of(loader), device);
    s.accuracy = result.accuracy;
    s.loss = result.loss;
  }
  s.latency_batch = std::min<std::int64_t>(batch_size, data.test.size());
  if (latency) {
    // Latency of the deployed form: BatchNorms folded into their convs, as any inference
    // runtime does; the dense and the pruned model are measured alike.
    const std::shared_ptr<nn::Module> folded = nn::folded_inference_copy(model);
    s.latency_ms = nn::measure_latency_ms(folded ? *folded : model,
                                          slice(data.test.images, 0, 0, s.latency_batch).to(device));
  }
  s.params = model.num_parameters();
  s.flops = nn::flops_per_sample(model, nn::input_shape(spec));
  return s;
}

void measure_latency_in_turns(nn::Module& dense, nn::Module& pruned, const datasets::Dataset& data, Device device,
                              ModelSummary& before, ModelSummary& after) {
  const Tensor batch = slice(data.test.images, 0, 0, before.latency_batch).to(device);
  const std::shared_ptr<nn::Module> folded = nn::folded_inference_copy(pruned);
  nn::Module& deployed = folded ? *folded : pruned;
  std::vector<double> dense_ms, pruned_ms;
  for (int round = 0; round < kPairedRounds; ++round) {
    dense_ms.push_back(nn::measure_latency_ms(dense, batch, /*warmup=*/1, kPairedRepetitions));
    pruned_ms.push_back(nn::measure_latency_ms(deployed, batch, /*warmup=*/1, kPairedRepetitions));
  }
  const auto median = [](std::vector<double>& v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  before.latency_ms = median(dense_ms);
  after.latency_ms = median(pruned_ms);
  after.latency_batch = before.latency_batch;
}

}  // namespace shrink::tools
