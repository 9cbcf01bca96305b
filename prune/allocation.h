// Allocation: how many units each group keeps. Criteria decide which; this file decides
// how many, under the guard rails every method shares.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nn/module.h"
#include "prune/criteria.h"
#include "prune/group.h"

namespace shrink::prune {

using KeepCounts = std::map<std::string, std::int64_t>;  // group name -> units kept

struct GuardRails {
  double max_layer_ratio = 1.0;  // at most this fraction of a group's units removed (1: only the one-unit floor)
  std::int64_t multiple = 1;      // round kept widths up to a multiple (8, 16: odd widths run slow)
  // The input group's own keep fraction (--keep-inputs; users prune fewer pixels than
  // neurons): in (0, 1], or 0 for the fraction every other group gets. Uniform and global
  // allocation, the target searches and PFP's budget search all hold the input group to it.
  double input_keep = 0;
  // The widths the keep fractions (a keep target's and input_keep) are of, by group name; a
  // group absent: its current size. A schedule of several rounds passes its start's
  // (prune/schedule.h): of the current widths, round after round, 0.5^(1/1000) of 300 units
  // rounds back to 300 and a thousand rounds pruned nothing.
  KeepCounts reference;
};

// g's width in `reference` (GuardRails::reference), else its current size.
std::int64_t reference_size(const Group& g, const KeepCounts& reference);

// Applies the rails to a wished-for count: at least one unit, at most max_layer_ratio
// removed, rounded up to `multiple` (never above the current size).
std::int64_t apply_rails(std::int64_t wished, std::int64_t size, const GuardRails& rails);

// The same keep fraction of every group's reference size (the input group: rails.input_keep
// when set).
KeepCounts allocate_uniform(const std::vector<Group>& groups, double keep_fraction, const GuardRails& rails);
// Throws unless rails.input_keep is 0 or in (0, 1].
void check_input_keep(const GuardRails& rails);

// One ranking across groups: each group's scores are divided by their mean (so layers of
// different scale compete fairly) and the top keep_fraction of all units (of the groups'
// reference sizes) survive.
KeepCounts allocate_global(const std::vector<Group>& groups, const std::map<std::string, Scores>& scores,
                           double keep_fraction, const GuardRails& rails);

// Parameters and FLOPs per sample the model would have with `keep` applied, measured on a
// shrunk copy (so the count always agrees with what shrinking really produces).
struct Size {
  std::int64_t params = 0, flops = 0;
};
Size size_after(const nn::Module& model, const std::vector<Group>& groups, const KeepCounts& keep,
                const Shape& sample_shape);
// size_after for several candidate allocations, on one shape-only copy.
std::vector<Size> sizes_after(const nn::Module& model, const std::vector<Group>& groups,
                              const std::vector<KeepCounts>& candidates, const Shape& sample_shape);

// The uniform keep fraction whose shrunk model has the largest parameter (or FLOP) count
// not above `fraction` of the current model's, found by bisection on the fraction.
double keep_fraction_for_target(const nn::Module& model, const std::vector<Group>& groups,
                                double fraction, bool flops, const Shape& sample_shape,
                                const GuardRails& rails);

// Global allocation to a parameter (or FLOP) target: the fraction of all units that
// allocate_global keeps is searched (by bisection) for the largest count not above `fraction`
// of the current model's. (The uniform fraction of keep_fraction_for_target would miss it:
// a global ranking keeps more units where they cost less, or more.)
KeepCounts allocate_global_for_target(const nn::Module& model, const std::vector<Group>& groups,
                                      const std::map<std::string, Scores>& scores, double fraction, bool flops,
                                      const Shape& sample_shape, const GuardRails& rails);

}  // namespace shrink::prune
