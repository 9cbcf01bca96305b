#include "prune/slice.h"

#include "core/error.h"
#include "core/ops.h"

namespace shrink::prune {

namespace {

Tensor cut(const Tensor& t, int axis, const std::vector<std::int64_t>& kept) {
  const Tensor idx = Tensor::from_vector(kept, {static_cast<std::int64_t>(kept.size())}, t.device());
  return index_select(t.detach(), axis, idx);
}

void check_kept(const std::string& what, const std::vector<std::int64_t>& kept, std::int64_t size) {
  SHRINK_CHECK(!kept.empty(), "prune: ", what, " would lose all ", size, " units; a group keeps at least one");
  for (size_t i = 0; i < kept.size(); ++i) {
    SHRINK_CHECK(kept[i] >= 0 && kept[i] < size, "prune: ", what, ": kept index ", kept[i],
                 " is out of range for ", size, " units");
    SHRINK_CHECK(i == 0 || kept[i] > kept[i - 1], "prune: ", what,
                 ": kept indices must be sorted and unique");
  }
}

}  // namespace

void slice(nn::Module& model, const std::string& tensor, int axis,
           const std::vector<std::int64_t>& kept, nn::Optimizer* optimizer) {
  if (!model.has_parameter(tensor)) {  // a buffer (e.g. BatchNorm running statistics)
    const Tensor& b = model.buffer(tensor);
    check_kept(tensor, kept, b.size(axis));
    model.set_buffer(tensor, cut(b, axis, kept));
    return;
  }
  const Tensor old = model.parameter(tensor);  // a handle: set_parameter below replaces the slot
  check_kept(tensor, kept, old.size(axis));
  Tensor fresh = cut(old, axis, kept);
  if (old.grad().defined()) fresh.set_grad(cut(old.grad(), axis, kept));
  model.set_parameter(tensor, fresh);
  if (!optimizer) return;
  optimizer->set_parameter(tensor, model.parameter(tensor));
  auto found = optimizer->state().find(tensor);
  if (found == optimizer->state().end()) return;
  for (auto& [key, state] : found->second)
    if (state.shape() == old.shape()) state = cut(state, axis, kept);  // per-element state
}

void shrink_group(nn::Module& model, Group& group, const std::vector<std::int64_t>& kept,
                  nn::Optimizer* optimizer) {
  check_kept("group '" + group.name + "'", kept, group_size(model, group));
  for (const Member& m : group.members) slice(model, m.tensor, m.axis, kept, optimizer);
  std::vector<std::int64_t> original;
  original.reserve(kept.size());
  for (std::int64_t k : kept) original.push_back(group.original.empty() ? k : group.original[static_cast<std::size_t>(k)]);
  group.original = std::move(original);
  group.size = static_cast<std::int64_t>(kept.size());
}

}  // namespace shrink::prune
