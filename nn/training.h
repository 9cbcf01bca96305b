// The training and evaluation loops, independent of where batches come from: a
// BatchSource yields (inputs, labels) until the epoch ends. The binaries plug the
// datasets loader in; tests plug in synthetic batches.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/error.h"
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
  std::int64_t steps = 0;  // batches used up so far, skipped non-finite steps included
  double loss_sum = 0, correct = 0;  // sums of per-sample loss and of correct predictions
  std::int64_t samples = 0;
  void add(double batch_loss, double batch_accuracy, std::int64_t n);
  EpochResult result(double seconds) const;
};

// Called after every step with the step count and the running means.
using StepCallback = std::function<void(std::int64_t step, const EpochResult& running)>;

// A NaN or +-Inf in a step's loss or in a gradient. Thrown before the optimizer touches the
// weights, so the model holds what the last good step left. The message names the step
// (counted from 1 within the epoch) and the first offending tensor and element.
struct NonFiniteError : Error {
  NonFiniteError(const std::string& message, std::int64_t step) : Error(message), step(step) {}
  std::int64_t step;
};

// What train_epoch does about a non-finite step. By default it stops (throws
// NonFiniteError); with retries it skips the step (no update), multiplies the learning rate
// by lr_factor and goes on, at most `retries` times over the run, then stops. The counters
// carry over from epoch to epoch: a caller that sets the learning rate itself each epoch
// (a schedule) multiplies it by lr_scale.
struct NonFiniteGuard {
  int retries = 0;
  double lr_factor = 0.5;
  int skipped = 0;        // steps skipped so far
  double lr_scale = 1.0;  // lr_factor ^ skipped
  std::function<void(const std::string& message)> on_skip;  // e.g. print a warning
};

// One pass over `source` in train mode: forward, cross-entropy, backward, optimizer step.
// Batches are moved to `device` (the model must already be there). With `running`, the
// epoch continues from that tally (a resumed epoch; its steps count on from running->steps)
// and the tally is kept current after every step, before on_step is called. Every step's
// loss and every gradient are checked for NaN/Inf first (see NonFiniteGuard; null: stop at
// the first).
EpochResult train_epoch(Module& model, Optimizer& optimizer, const BatchSource& source,
                        Device device, double label_smoothing = 0.0,
                        const StepCallback& on_step = {}, EpochTally* running = nullptr,
                        NonFiniteGuard* guard = nullptr);

// Loss and accuracy over `source` in eval mode, without gradients. A non-finite loss (the
// model's outputs overflow) is a NonFiniteError naming the batch, not a figure.
EpochResult evaluate(Module& model, const BatchSource& source, Device device);

// Median wall time (ms) of one forward pass over `batch` in eval mode without gradients,
// after `warmup` untimed passes; synchronises the device before reading the clock.
double measure_latency_ms(Module& model, const Tensor& batch, int warmup = 5, int repetitions = 25);

}  // namespace shrink::nn
