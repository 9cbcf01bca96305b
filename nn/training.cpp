#include "nn/training.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/backend.h"

namespace shrink::nn {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

using Tally = EpochTally;

}  // namespace

void EpochTally::add(double batch_loss, double batch_accuracy, std::int64_t n) {
  loss_sum += batch_loss * n;
  correct += batch_accuracy * n;
  samples += n;
  ++steps;
}

// Running sums -> means.
EpochResult EpochTally::result(double seconds) const {
  EpochResult r;
  r.samples = samples;
  r.seconds = seconds;
  if (samples > 0) {
    r.loss = loss_sum / samples;
    r.accuracy = correct / samples;
  }
  return r;
}

EpochResult train_epoch(Module& model, Optimizer& optimizer, const BatchSource& source,
                        Device device, double label_smoothing, const StepCallback& on_step,
                        EpochTally* running) {
  model.train();
  Tally own;
  Tally& tally = running ? *running : own;
  const auto start = Clock::now();
  std::int64_t step = tally.steps;
  while (auto batch = source()) {
    Tensor x = batch->inputs.to(device), y = batch->labels.to(device);
    optimizer.zero_grad();
    Tensor logits = model(x);
    Tensor loss = cross_entropy(logits, y, label_smoothing);
    loss.backward();
    optimizer.step();
    tally.add(loss.item(), accuracy(logits.detach(), y), y.size(0));
    if (on_step) on_step(++step, tally.result(seconds_since(start)));
  }
  return tally.result(seconds_since(start));
}

EpochResult evaluate(Module& model, const BatchSource& source, Device device) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  Tally tally;
  const auto start = Clock::now();
  while (auto batch = source()) {
    Tensor x = batch->inputs.to(device), y = batch->labels.to(device);
    Tensor logits = model(x);
    tally.add(cross_entropy(logits, y).item(), accuracy(logits, y), y.size(0));
  }
  model.train(was_training);
  return tally.result(seconds_since(start));
}

double measure_latency_ms(Module& model, const Tensor& batch, int warmup, int repetitions) {
  SHRINK_CHECK(repetitions > 0, "measure_latency_ms: repetitions must be positive");
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  auto& backend = kernels::backend(batch.device().type);
  for (int i = 0; i < warmup; ++i) model(batch);
  backend.synchronize();
  std::vector<double> times;
  for (int i = 0; i < repetitions; ++i) {
    const auto start = Clock::now();
    model(batch);
    backend.synchronize();
    times.push_back(seconds_since(start) * 1e3);
  }
  model.train(was_training);
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace shrink::nn
