// The one rewrite primitive: a tensor shrinks only through slice(), which keeps the given
// indices along one axis of a parameter (or buffer) and applies the same cut to its
// gradient and to the optimizer's state for it (momentum, Adam moments). Modules derive
// their sizes from the new shapes; nothing else is stored.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.h"
#include "nn/optim.h"
#include "prune/group.h"

namespace shrink::prune {

// Keeps `kept` (sorted, unique, in range) along `axis` of the named tensor.
void slice(nn::Module& model, const std::string& tensor, int axis,
           const std::vector<std::int64_t>& kept, nn::Optimizer* optimizer = nullptr);

// The input group only (prune/group.h): makes the layer presenting the model input select
// `kept` of the features it presents now (composed with any selection it already has), on
// the weights' device. shrink_group calls it; a shape-only copy (prune/allocation.h) does too.
void narrow_input_selection(nn::Module& model, const Group& group, const std::vector<std::int64_t>& kept);

// Shrinks every member of `group` to the units `kept` (the group's size afterwards is
// kept.size()); an input group also narrows the model's input selection. Throws when
// `kept` is empty, unsorted, repeated or out of range.
void shrink_group(nn::Module& model, Group& group, const std::vector<std::int64_t>& kept,
                  nn::Optimizer* optimizer = nullptr);

}  // namespace shrink::prune
