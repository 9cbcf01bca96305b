// Reverse-mode autodiff, define-by-run. Each differentiable op records a Node that holds
// its inputs and a closure mapping the output's gradient to the inputs' gradients
// (flashlight/micrograd style). backward() is a topological sort and a loop.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace shrink {

struct Node {
  const char* op = "";  // for error messages
  std::vector<Tensor> inputs;
  // Given dL/d(output), returns dL/d(input_i) for every input (undefined where an input
  // does not require grad).
  std::function<std::vector<Tensor>(const Tensor& grad_output)> backward;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Releases the chain of nodes behind this one iteratively: the default, recursive
  // destruction overflows the stack on deep graphs (a few hundred thousand ops).
  ~Node();
};

// True unless a NoGradGuard is alive on this thread.
bool grad_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Turns grad mode on for its lifetime (inside a NoGradGuard, too), then restores it:
// for passes that must record the graph whatever their caller's mode (prune/trace.h).
class EnableGradGuard {
 public:
  EnableGradGuard();
  ~EnableGradGuard();
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

// True when any input requires grad and grad mode is on: the op must record a node.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node to `output` (marking it requires_grad). `inputs` are kept alive by the node.
void record(Tensor& output, const char* op, std::vector<Tensor> inputs,
            std::function<std::vector<Tensor>(const Tensor&)> backward);

// Runs the backward pass from `root` seeded with `seed`; accumulates into leaves' grad.
void run_backward(const Tensor& root, const Tensor& seed);

}  // namespace shrink
