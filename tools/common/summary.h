// The numbers every report shows for a model on a data set: test accuracy and loss,
// parameters, FLOPs per sample and the measured latency of one batch.
#pragma once
#include <cstdint>

#include <nlohmann/json.hpp>

#include "datasets/dataset.h"
#include "nn/module.h"

namespace shrink::tools {

struct ModelSummary {
  double accuracy = 0, loss = 0;
  std::int64_t params = 0, flops = 0;
  double latency_ms = 0;
  std::int64_t latency_batch = 0;
};

// Evaluates on the test split in batches of `batch_size` and times one batch of that size
// (on a copy with its BatchNorms folded into the convs, nn/fold_batch_norm.h);
// FLOPs are counted on one sample of the shape the model's spec (nn/models.h) expects.
// With `accuracy` false the test-split pass is skipped (accuracy and loss stay 0); with
// `latency` false the batch is not timed (latency_ms stays 0; latency_batch is set either way).
ModelSummary summarize(nn::Module& model, const nlohmann::json& spec,
                       const datasets::Dataset& data, Device device, std::int64_t batch_size,
                       bool accuracy = true, bool latency = true);

// The latencies of a dense model and its pruned form, measured in turns (dense, pruned, ...,
// kPairedRounds each of kPairedRepetitions batches after one warm-up; the median of each side's
// round medians): timed far apart, a slow spell of the machine or the first measurement's cold
// start moved one side only (an unpruned model was reported 1.27x faster than itself). Each
// side runs 27 batches, no more than summarize's 5 + 25. `dense` is nn::inference_copy of the
// model before pruning; the summaries' latency_ms are overwritten, on before's latency_batch.
constexpr int kPairedRounds = 3, kPairedRepetitions = 8;
void measure_latency_in_turns(nn::Module& dense, nn::Module& pruned, const datasets::Dataset& data, Device device,
                              ModelSummary& before, ModelSummary& after);

}  // namespace shrink::tools
