// Reverse-mode autodiff, define-by-run. Each differentiable op records a Node with one edge per
// input (to the node that made it, or to the leaf itself) and a closure mapping the output's
// gradient to the inputs' gradients. backward() is a topological sort of the nodes and a loop.
//
// A node does not hold its input tensors: an input's memory stays alive only while the closure
// captured it (because a requested gradient reads it) or someone else holds it. With frozen
// parameters (a pruning score pass: eval mode, input gradients only) a conv, an eval BatchNorm
// and an add keep no activation at all, a ReLU only its output (tests/test_autograd_saved.cpp).
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace shrink {

struct Node;

// Where the gradient of one input of a node goes: the node that made the input, or the input
// itself when it is a leaf that requires grad (its .grad accumulates); neither for an input
// that needs no gradient.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<TensorImpl> leaf;
  Shape shape;  // the input's, to check the gradient's
};

struct Node {
  const char* op = "";     // for error messages
  std::vector<Edge> edges;  // one per input, in the op's order
  // The input tensors themselves, recorded only while a KeepGraphInputsGuard is alive: the
  // channel trace (prune/trace.cpp) walks the graph by tensor.
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

// While alive on this thread, recorded nodes also keep their input tensors (Node::inputs), so
// that a walk over the graph can read every input's identity and shape after the forward.
class KeepGraphInputsGuard {
 public:
  KeepGraphInputsGuard();
  ~KeepGraphInputsGuard();
  KeepGraphInputsGuard(const KeepGraphInputsGuard&) = delete;
  KeepGraphInputsGuard& operator=(const KeepGraphInputsGuard&) = delete;

 private:
  bool previous_;
};

// True when any input requires grad and grad mode is on: the op must record a node.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node to `output` (marking it requires_grad), with an edge per input. The inputs'
// memory is not kept by the node (only by `backward`'s captures), except under a
// KeepGraphInputsGuard.
void record(Tensor& output, const char* op, std::vector<Tensor> inputs,
            std::function<std::vector<Tensor>(const Tensor&)> backward);

// Runs the backward pass from `root` seeded with `seed`; accumulates into leaves' grad.
void run_backward(const Tensor& root, const Tensor& seed);

}  // namespace shrink
