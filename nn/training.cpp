#include "nn/training.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"

namespace shrink::nn {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

using Tally = EpochTally;

// "" when the loss is finite; otherwise what is wrong, with the first non-finite parameter
// if the weights themselves went bad (which a too-large learning rate does first).
std::string nonfinite_loss_fault(double loss, const Optimizer& optimizer) {
  if (std::isfinite(loss)) return "";
  const std::string bad = first_nonfinite_named(optimizer.named_parameters());
  return "the loss is " + std::to_string(loss) +
         (bad.empty() ? " (every parameter is finite: the outputs overflowed)" : "; parameter " + bad);
}

// "" when every gradient is finite; otherwise the first offending one, in parameter order.
std::string nonfinite_gradient_fault(const Optimizer& optimizer) {
  NamedTensors grads;
  for (const auto& [name, param] : optimizer.named_parameters()) grads.emplace_back(name, param.grad());
  const std::string bad = first_nonfinite_named(grads);
  return bad.empty() ? "" : "the gradient of " + bad;
}

// Skips the step (lowering the learning rate) while the guard has retries, else throws.
void skip_or_stop(std::int64_t step, const std::string& fault, Optimizer& optimizer,
                  NonFiniteGuard* guard) {
  optimizer.zero_grad();
  std::string message = "step " + std::to_string(step) + ": " + fault;
  if (guard && guard->skipped < guard->retries) {
    ++guard->skipped;
    guard->lr_scale *= guard->lr_factor;
    optimizer.set_lr(optimizer.lr() * guard->lr_factor);
    if (guard->on_skip)
      guard->on_skip(message + "; step skipped, learning rate now " + std::to_string(optimizer.lr()) +
                     " (retry " + std::to_string(guard->skipped) + " of " +
                     std::to_string(guard->retries) + ")");
    return;
  }
  if (guard && guard->retries > 0)
    message += " (all " + std::to_string(guard->retries) + " retries used)";
  throw NonFiniteError(message + "; training stopped before updating the weights", step);
}

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
                        EpochTally* running, NonFiniteGuard* guard) {
  model.train();
  Tally own;
  Tally& tally = running ? *running : own;
  const auto start = Clock::now();
  while (auto batch = source()) {
    const std::int64_t step = tally.steps + 1;  // this batch's place in the epoch, from 1
    Tensor x = batch->inputs.to(device), y = batch->labels.to(device);
    optimizer.zero_grad();
    Tensor logits = model(x);
    Tensor loss = cross_entropy(logits, y, label_smoothing);
    const double loss_value = loss.item();
    std::string fault = nonfinite_loss_fault(loss_value, optimizer);
    if (fault.empty()) {
      loss.backward();
      fault = nonfinite_gradient_fault(optimizer);
    }
    if (!fault.empty()) {
      skip_or_stop(step, fault, optimizer, guard);
      ++tally.steps;  // the batch is used up: a resumed epoch starts after it
      continue;
    }
    optimizer.step();
    tally.add(loss_value, accuracy(logits.detach(), y), y.size(0));
    if (on_step) on_step(tally.steps, tally.result(seconds_since(start)));
  }
  return tally.result(seconds_since(start));
}

EpochResult evaluate(Module& model, const BatchSource& source, Device device) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  Tally tally;
  std::int64_t batches = 0;
  const auto start = Clock::now();
  while (auto batch = source()) {
    Tensor x = batch->inputs.to(device), y = batch->labels.to(device);
    Tensor logits = model(x);
    const double loss = cross_entropy(logits, y).item();
    ++batches;
    if (!std::isfinite(loss))
      throw NonFiniteError("evaluate: the loss of batch " + std::to_string(batches) + " is " +
                               std::to_string(loss) + ": the model's outputs are not finite",
                           batches);
    tally.add(loss, accuracy(logits, y), y.size(0));
  }
  model.train(was_training);
  return tally.result(seconds_since(start));
}

double measure_latency_ms(Module& model, const Tensor& batch, int warmup, int repetitions) {
  SHRINK_CHECK(repetitions > 0, "measure_latency_ms: repetitions must be positive");
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  for (int i = 0; i < warmup; ++i) model(batch);
  synchronize(batch.device());
  std::vector<double> times;
  for (int i = 0; i < repetitions; ++i) {
    const auto start = Clock::now();
    model(batch);
    synchronize(batch.device());
    times.push_back(seconds_since(start) * 1e3);
  }
  model.train(was_training);
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace shrink::nn
