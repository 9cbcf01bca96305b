// The training and evaluation loops, independent of where batches come from: a
// BatchSource yields (inputs, labels) until the epoch ends. The binaries plug the
// datasets loader in; tests plug in synthetic batches.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>

#include "core/tensor.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace shrink::nn {

struct LabeledBatch {
  Tensor inputs;  // (B, ...)
  Tensor labels;  // int64 (B)
};
using BatchSource = std::function<std::optional<LabeledBatch>()>;

struct EpochResult {
  double loss = 0;      // mean over samples
  double accuracy = 0;  // fraction correct
  std::int64_t samples = 0;
  double seconds = 0;   // wall time of the loop
  double samples_per_second() const { return seconds > 0 ? samples / seconds : 0; }
};

// An epoch's running sums: the exact state a resumed epoch continues from, so that its
// figures equal those of an uninterrupted one (means alone would round differently).
struct EpochTally {
  std::int64_t steps = 0;
  double loss_sum = 0, correct = 0;  // sums of per-sample loss and of correct predictions
  std::int64_t samples = 0;
  void add(double batch_loss, double batch_accuracy, std::int64_t n);
  EpochResult result(double seconds) const;
};

// Called after every step with the step count and the running means.
using StepCallback = std::function<void(std::int64_t step, const EpochResult& running)>;

// One pass over `source` in train mode: forward, cross-entropy, backward, optimizer step.
// Batches are moved to `device` (the model must already be there). With `running`, the
// epoch continues from that tally (a resumed epoch; its steps count on from running->steps)
// and the tally is kept current after every step, before on_step is called.
EpochResult train_epoch(Module& model, Optimizer& optimizer, const BatchSource& source,
                        Device device, double label_smoothing = 0.0,
                        const StepCallback& on_step = {}, EpochTally* running = nullptr);

// Loss and accuracy over `source` in eval mode, without gradients.
EpochResult evaluate(Module& model, const BatchSource& source, Device device);

// Median wall time (ms) of one forward pass over `batch` in eval mode without gradients,
// after `warmup` untimed passes; synchronises the device before reading the clock.
double measure_latency_ms(Module& model, const Tensor& batch, int warmup = 5, int repetitions = 25);

}  // namespace shrink::nn
