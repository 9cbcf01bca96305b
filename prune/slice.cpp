#include "prune/slice.h"

#include "core/error.h"
#include "core/ops.h"
#include "nn/input_selection.h"

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

void narrow_input_selection(nn::Module& model, const Group& group, const std::vector<std::int64_t>& kept) {
  SHRINK_CHECK(group.is_input(), "narrow_input_selection: group '", group.name, "' is not the input group");
  auto* selecting = dynamic_cast<nn::InputSelection*>(model.child(group.activation).get());
  SHRINK_CHECK(selecting != nullptr, "narrow_input_selection: layer '", group.activation,
               "' cannot select input features");
  const std::int64_t units = group_size(model, group);
  check_kept("group '" + group.name + "'", kept, units);
  std::vector<std::int64_t> index(kept);  // positions among the features selected so far
  std::int64_t features = units;
  if (selecting->selects_inputs()) {
    const Tensor current = selecting->input_index();
    SHRINK_CHECK(current.size(0) == units, "narrow_input_selection: layer '", group.activation, "' selects ",
                 current.size(0), " features but group '", group.name, "' has ", units, " units");
    const auto old = current.to(Device::cpu()).to_vector<std::int64_t>();
    for (auto& i : index) i = old[static_cast<std::size_t>(i)];  // compose: kept of the kept
    features = selecting->selected_from();
  }
  const Device device = model.parameter(group.members.front().tensor).device();
  selecting->select_inputs(Tensor::from_vector(index, {static_cast<std::int64_t>(index.size())}, device),
                           features);
}

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

std::vector<std::int64_t> expand_blocks(const std::vector<std::int64_t>& kept, std::int64_t block) {
  if (block == 1) return kept;
  std::vector<std::int64_t> out;
  out.reserve(kept.size() * static_cast<std::size_t>(block));
  for (std::int64_t k : kept)
    for (std::int64_t j = 0; j < block; ++j) out.push_back(k * block + j);
  return out;
}

void shrink_group(nn::Module& model, Group& group, const std::vector<std::int64_t>& kept,
                  nn::Optimizer* optimizer, bool fold_shift) {
  check_kept("group '" + group.name + "'", kept, group_size(model, group));
  if (group.is_input()) narrow_input_selection(model, group, kept);  // before the columns go
  if (fold_shift) fold_removed_shift(model, group, kept);             // before the columns go
  for (const Member& m : group.members) slice(model, m.tensor, m.axis, expand_blocks(kept, m.block), optimizer);
  std::vector<std::int64_t> original;
  original.reserve(kept.size());
  for (std::int64_t k : kept) original.push_back(group.original.empty() ? k : group.original[static_cast<std::size_t>(k)]);
  group.original = std::move(original);
  group.size = static_cast<std::int64_t>(kept.size());
}

}  // namespace shrink::prune
