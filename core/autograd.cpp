#include "core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/ops.h"

namespace shrink {

namespace {
thread_local bool g_grad_enabled = true;
thread_local bool g_keep_inputs = false;
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
  // Steal every input node that only this node keeps alive and empty it in a loop, so no
  // destructor recurses (a deep graph would overflow the stack).
  std::vector<std::shared_ptr<Node>> pending;
  auto take_edges = [&pending](Node& n) {
    // A kept input (KeepGraphInputsGuard) that only this node holds gives up its grad_fn first,
    // so dropping the input does not destroy that node recursively.
    for (Tensor& t : n.inputs)
      if (TensorImpl* impl = t.impl(); impl && t.impl_ptr().use_count() == 1 && impl->grad_fn)
        pending.push_back(std::move(impl->grad_fn));
    n.inputs.clear();
    for (Edge& e : n.edges)
      if (e.node && e.node.use_count() == 1) pending.push_back(std::move(e.node));
    n.edges.clear();
  };
  take_edges(*this);
  while (!pending.empty()) {
    std::shared_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    take_edges(*node);
  }  // each popped node dies here with no edges left, so its destructor does not recurse
}

KeepGraphInputsGuard::KeepGraphInputsGuard() : previous_(g_keep_inputs) { g_keep_inputs = true; }
KeepGraphInputsGuard::~KeepGraphInputsGuard() { g_keep_inputs = previous_; }

void record(Tensor& output, const char* op, std::vector<Tensor> inputs,
            std::function<std::vector<Tensor>(const Tensor&)> backward) {
  auto node = std::make_shared<Node>();
  node->op = op;
  node->edges.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    Edge e;
    if (t.defined() && t.requires_grad()) {
      e.shape = t.shape();
      if (t.impl()->grad_fn) e.node = t.impl()->grad_fn;
      else e.leaf = t.impl_ptr();
    }
    node->edges.push_back(std::move(e));
  }
  if (g_keep_inputs) node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  output.impl()->requires_grad = true;
  output.impl()->grad_fn = std::move(node);
}

namespace {

// A leaf's .grad += g. A leaf owns its gradient buffer, so in-place updates of one (optimizers,
// clipping) cannot change another's or the caller's seed.
void accumulate_into_leaf(TensorImpl& leaf, const Tensor& g) {
  if (leaf.grad) {
    leaf.grad = add(Tensor(leaf.grad), g).impl_ptr();
  } else if (g.impl_ptr().use_count() == 1 && g.impl()->storage.use_count() == 1) {
    leaf.grad = g.impl_ptr();  // nobody else sees this buffer: keep it
  } else {
    leaf.grad = g.clone().impl_ptr();
  }
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& seed) {
  NoGradGuard no_grad;  // backward closures build plain tensors, no second-order graph
  Node* const top = root.impl()->grad_fn.get();
  if (!top) {  // the root is a leaf
    if (root.requires_grad()) accumulate_into_leaf(*root.impl(), seed.clone());  // never the caller's seed
    return;
  }

  // Iterative post-order DFS over the nodes: a node comes after every node that consumes it.
  std::vector<Node*> order;
  std::unordered_set<Node*> visited{top};
  std::vector<std::pair<Node*, std::size_t>> stack{{top, 0}};
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->edges.size()) {
      Node* child = node->edges[next++].node.get();
      if (child && visited.insert(child).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }

  std::unordered_map<Node*, Tensor> grads;  // d root / d (the output of each node)
  grads[top] = seed;
  std::vector<TensorImpl*> leaves;  // in the order their first gradient arrived
  std::unordered_map<TensorImpl*, Tensor> leaf_grads;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node& node = **it;
    auto found = grads.find(&node);
    if (found == grads.end()) continue;  // no path carried a gradient here
    const Tensor grad = std::move(found->second);
    grads.erase(found);
    std::vector<Tensor> input_grads = node.backward(grad);
    SHRINK_CHECK(input_grads.size() == node.edges.size(), "backward of ", node.op, " returned ",
                 input_grads.size(), " gradients for ", node.edges.size(), " inputs");
    for (std::size_t i = 0; i < node.edges.size(); ++i) {
      const Edge& e = node.edges[i];
      const Tensor& g = input_grads[i];
      if (!g.defined() || (!e.node && !(e.leaf && e.leaf->requires_grad))) continue;
      SHRINK_CHECK(g.shape() == e.shape, "backward of ", node.op, ": gradient ", shape_str(g.shape()),
                   " does not match input ", i, " of shape ", shape_str(e.shape));
      if (e.node) {
        auto [slot, inserted] = grads.try_emplace(e.node.get(), g);
        if (!inserted) slot->second = add(slot->second, g);
      } else {
        auto [slot, inserted] = leaf_grads.try_emplace(e.leaf.get(), g);
        if (inserted) leaves.push_back(e.leaf.get());
        else slot->second = add(slot->second, g);
      }
    }
  }
  for (TensorImpl* leaf : leaves) {
    Tensor g = std::move(leaf_grads.at(leaf));
    leaf_grads.erase(leaf);
    accumulate_into_leaf(*leaf, g);
  }
}

}  // namespace shrink
