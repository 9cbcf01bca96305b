#include "core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/ops.h"

namespace shrink {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }

NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }
EnableGradGuard::EnableGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = true; }
EnableGradGuard::~EnableGradGuard() { g_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Node::~Node() {
  // Steal the node of every input that only this node keeps alive, then let that input
  // die with an empty grad_fn; the stolen nodes are emptied the same way, in a loop.
  std::vector<std::shared_ptr<Node>> pending;
  auto take_inputs = [&pending](std::vector<Tensor>& inputs) {
    for (Tensor& t : inputs) {
      TensorImpl* impl = t.impl();
      if (impl && t.impl_ptr().use_count() == 1 && impl->grad_fn && impl->grad_fn.use_count() == 1)
        pending.push_back(std::move(impl->grad_fn));
    }
    inputs.clear();
  };
  take_inputs(inputs);
  while (!pending.empty()) {
    std::shared_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    take_inputs(node->inputs);
  }  // each popped node dies here with no inputs left, so its destructor does not recurse
}

void record(Tensor& output, const char* op, std::vector<Tensor> inputs,
            std::function<std::vector<Tensor>(const Tensor&)> backward) {
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  output.impl()->requires_grad = true;
  output.impl()->grad_fn = std::move(node);
}

void run_backward(const Tensor& root, const Tensor& seed) {
  NoGradGuard no_grad;  // backward closures build plain tensors, no second-order graph

  // Iterative post-order DFS: a tensor comes after everything that consumes it.
  std::vector<TensorImpl*> order;
  std::unordered_set<TensorImpl*> visited;
  std::vector<std::pair<TensorImpl*, size_t>> stack{{root.impl(), 0}};
  visited.insert(root.impl());
  while (!stack.empty()) {
    auto& [impl, next] = stack.back();
    const Node* node = impl->grad_fn.get();
    if (node && next < node->inputs.size()) {
      TensorImpl* child = node->inputs[next++].impl();
      if (child && child->requires_grad && visited.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(impl);
      stack.pop_back();
    }
  }

  std::unordered_map<TensorImpl*, Tensor> grads;
  grads[root.impl()] = seed;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    TensorImpl* impl = *it;
    auto found = grads.find(impl);
    if (found == grads.end()) continue;  // no path carried a gradient here
    Tensor grad = found->second;
    grads.erase(found);
    if (!impl->grad_fn) {  // a leaf: accumulate
      if (impl->grad) {
        Tensor acc = add(Tensor(impl->grad), grad);
        impl->grad = acc.impl_ptr();
      } else if (grad.impl_ptr().use_count() == 1 && grad.impl()->storage.use_count() == 1) {
        impl->grad = grad.impl_ptr();  // nobody else sees this buffer: keep it
      } else {
        // Shared with the seed, another leaf's gradient or a view: a leaf owns its grad,
        // so in-place updates of one (optimizers, clipping) cannot change another.
        impl->grad = grad.clone().impl_ptr();
      }
      continue;
    }
    Node& node = *impl->grad_fn;
    std::vector<Tensor> input_grads = node.backward(grad);
    SHRINK_CHECK(input_grads.size() == node.inputs.size(), "backward of ", node.op,
                 " returned ", input_grads.size(), " gradients for ", node.inputs.size(),
                 " inputs");
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const Tensor& input = node.inputs[i];
      const Tensor& g = input_grads[i];
      if (!input.defined() || !input.requires_grad() || !g.defined()) continue;
      SHRINK_CHECK(g.shape() == input.shape(), "backward of ", node.op, ": gradient ",
                   shape_str(g.shape()), " does not match input ", i, " of shape ",
                   shape_str(input.shape()));
      auto [slot, inserted] = grads.try_emplace(input.impl(), g);
      if (!inserted) slot->second = add(slot->second, g);
    }
  }
}

}  // namespace shrink
