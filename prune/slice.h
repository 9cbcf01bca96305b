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

// Unit indices to tensor indices along an axis with `block` consecutive entries per unit.
std::vector<std::int64_t> expand_blocks(const std::vector<std::int64_t>& kept, std::int64_t block);

// Shrinks every member of `group` to the units `kept` (the group's size afterwards is
// kept.size()); an input group also narrows the model's input selection. With `fold_shift`
// it first folds what the removed units still emit into their consumers (fold_removed_shift).
// Throws when `kept` is empty, unsorted, repeated or out of range.
void shrink_group(nn::Module& model, Group& group, const std::vector<std::int64_t>& kept,
                  nn::Optimizer* optimizer = nullptr, bool fold_shift = false);

// The shift fold. A unit whose producer's weights are masked to zero still emits a constant:
// its bias, or its BatchNorm's shift beta - gamma * mean / sqrt(var + eps), through the
// elementwise layers after it (ReLU(shift), say). Masking tools let that constant through
// to the next layer; removing the unit would drop it. So before a cut, each consumer's
// bias gains W[:, removed] * emitted (summed over the kernel), or, for a consumer without
// a bias whose only reader is a BatchNorm, that BN's running mean loses it (exact in eval
// mode, and in training mode the batch mean absorbs a constant). The cut model then
// computes what the masked one does: exactly for Linear consumers and unpadded convs, and
// at every output position whose window lies inside the map for padded ones (at the border
// the masked model's zero padding hides part of the constant, which no bias can mimic).
// Returns false, changing nothing, for a group where no single chain of elementwise modules
// leads from one producer to the consumers (a residual stream, the input group) or whose
// consumer has neither a bias nor a BatchNorm reader.
bool fold_removed_shift(nn::Module& model, const Group& group, const std::vector<std::int64_t>& kept);

}  // namespace shrink::prune
