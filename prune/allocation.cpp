#include "prune/allocation.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/random.h"
#include "nn/flops.h"
#include "nn/input_selection.h"
#include "nn/models.h"

namespace shrink::prune {

std::int64_t apply_rails(std::int64_t wished, std::int64_t size, const GuardRails& rails) {
  const auto floor_by_ratio =
      static_cast<std::int64_t>(std::ceil(static_cast<double>(size) * (1.0 - rails.max_layer_ratio)));
  std::int64_t keep = std::max<std::int64_t>({wished, floor_by_ratio, 1});
  if (rails.multiple > 1) keep = (keep + rails.multiple - 1) / rails.multiple * rails.multiple;
  return std::min(keep, size);
}

std::int64_t reference_size(const Group& g, const KeepCounts& reference) {
  const auto it = reference.find(g.name);
  return it == reference.end() ? g.size : it->second;
}

KeepCounts allocate_uniform(const std::vector<Group>& groups, double keep_fraction, const GuardRails& rails) {
  SHRINK_CHECK(keep_fraction > 0 && keep_fraction <= 1, "allocate_uniform: keep fraction must be in "
               "(0, 1], got ", keep_fraction);
  check_input_keep(rails);
  KeepCounts keep;
  for (const Group& g : groups) {
    const double f = g.is_input() && rails.input_keep > 0 ? rails.input_keep : keep_fraction;
    keep[g.name] = apply_rails(std::llround(f * static_cast<double>(reference_size(g, rails.reference))), g.size, rails);
  }
  return keep;
}

void check_input_keep(const GuardRails& rails) {
  SHRINK_CHECK(rails.input_keep == 0 || (rails.input_keep > 0 && rails.input_keep <= 1),
               "prune: the input features' keep fraction must be in (0, 1], got ", rails.input_keep);
}

KeepCounts allocate_global(const std::vector<Group>& groups, const std::map<std::string, Scores>& scores,
                           double keep_fraction, const GuardRails& rails) {
  SHRINK_CHECK(keep_fraction > 0 && keep_fraction <= 1, "allocate_global: keep fraction must be in "
               "(0, 1], got ", keep_fraction);
  struct Unit {
    double score;
    const Group* group;
  };
  std::vector<Unit> units;
  for (const Group& g : groups) {
    const Scores& s = scores.at(g.name);
    SHRINK_CHECK(static_cast<std::int64_t>(s.size()) == g.size, "allocate_global: group '", g.name,
                 "' has ", g.size, " units but ", s.size(), " scores");
    const double mean = std::accumulate(s.begin(), s.end(), 0.0) / std::max<size_t>(s.size(), 1);
    for (double v : s) units.push_back({mean > 0 ? v / mean : v, &g});
  }
  double reference_units = 0;
  for (const Group& g : groups) reference_units += static_cast<double>(reference_size(g, rails.reference));
  const auto total_keep = static_cast<size_t>(std::llround(keep_fraction * reference_units));
  std::stable_sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) { return a.score > b.score; });
  KeepCounts keep;
  for (const Group& g : groups) keep[g.name] = 0;
  for (size_t i = 0; i < total_keep && i < units.size(); ++i) ++keep[units[i].group->name];
  check_input_keep(rails);
  for (const Group& g : groups) {
    if (g.is_input() && rails.input_keep > 0)  // held to its own fraction, outside the ranking
      keep[g.name] = std::llround(rails.input_keep * static_cast<double>(reference_size(g, rails.reference)));
    keep[g.name] = apply_rails(keep[g.name], g.size, rails);
  }
  return keep;
}

namespace {

// A copy of the model's structure whose tensors can be resized without touching values:
// counting parameters and FLOPs only reads shapes.
struct ShapeModel {
  std::shared_ptr<nn::Module> module;
  explicit ShapeModel(const nn::Module& model) : module(nn::shape_copy(model)) {}
  Size measure(const std::vector<Group>& groups, const KeepCounts& keep, const Shape& sample) {
    const nn::StateDict current = module->state_dict();
    std::map<std::string, Shape> shapes;
    for (const auto& [name, t] : current) shapes[name] = t.shape();
    for (const Group& g : groups) {
      auto k = keep.find(g.name);
      if (k == keep.end()) continue;
      for (const Member& m : g.members) shapes.at(m.tensor)[m.axis] = k->second * m.block;
      if (g.is_input()) select_first(g, k->second);
    }
    for (const auto& [name, shape] : shapes) {
      if (current.at(name).shape() == shape) continue;  // keeps index buffers' dtype
      Tensor t = Tensor::empty(shape);
      if (module->has_parameter(name)) module->set_parameter(name, t);
      else module->set_buffer(name, t);
    }
    return {module->num_parameters(), nn::flops_per_sample(*module, sample)};
  }
  // The input group at k units: the first k features (only the count matters here), out of
  // the features the model is fed.
  void select_first(const Group& g, std::int64_t k) {
    auto* selecting = dynamic_cast<nn::InputSelection*>(module->child(g.activation).get());
    SHRINK_CHECK(selecting != nullptr, "size_after: layer '", g.activation, "' cannot select input features");
    const Member& m = g.members.front();
    const std::int64_t features =
        selecting->selects_inputs() ? selecting->selected_from() : module->parameter(m.tensor).size(m.axis);
    selecting->select_inputs(Tensor::arange(k), features);
  }
};

}  // namespace

Size size_after(const nn::Module& model, const std::vector<Group>& groups, const KeepCounts& keep,
                const Shape& sample_shape) {
  ShapeModel shape_model(model);
  return shape_model.measure(groups, keep, sample_shape);
}

std::vector<Size> sizes_after(const nn::Module& model, const std::vector<Group>& groups,
                              const std::vector<KeepCounts>& candidates, const Shape& sample_shape) {
  ShapeModel shape_model(model);
  std::vector<Size> sizes;
  for (const KeepCounts& keep : candidates) sizes.push_back(shape_model.measure(groups, keep, sample_shape));
  return sizes;
}

namespace {

// The largest fraction f in (0, 1] whose allocation allocate(f) keeps at most `fraction` of the
// current model's parameters (or FLOPs), by bisection on f (sizes grow with f), measured on one
// shape-only copy. Non-prunable parts (the input layer's fan-in, the classifier, residual streams
// left whole) may make small targets unreachable: the smallest fraction is then the answer, and
// the caller's report shows how far it got.
template <class Allocate>
double largest_fraction_within(const nn::Module& model, const std::vector<Group>& groups, double fraction,
                               bool flops, const Shape& sample_shape, Allocate&& allocate) {
  SHRINK_CHECK(fraction > 0 && fraction <= 1, "target fraction must be in (0, 1], got ", fraction);
  ShapeModel shape_model(model);
  const Size dense = shape_model.measure(groups, {}, sample_shape);
  const double target = fraction * static_cast<double>(flops ? dense.flops : dense.params);
  auto size_at = [&](double f) {
    const Size s = shape_model.measure(groups, allocate(f), sample_shape);
    return static_cast<double>(flops ? s.flops : s.params);
  };
  double lo = 1e-6, hi = 1.0;
  if (size_at(lo) > target) return lo;
  for (int i = 0; i < 50 && hi - lo > 1e-7; ++i) {
    const double mid = 0.5 * (lo + hi);
    (size_at(mid) <= target ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace

double keep_fraction_for_target(const nn::Module& model, const std::vector<Group>& groups,
                                double fraction, bool flops, const Shape& sample_shape,
                                const GuardRails& rails) {
  return largest_fraction_within(model, groups, fraction, flops, sample_shape,
                                 [&](double f) { return allocate_uniform(groups, f, rails); });
}

KeepCounts allocate_global_for_target(const nn::Module& model, const std::vector<Group>& groups,
                                      const std::map<std::string, Scores>& scores, double fraction, bool flops,
                                      const Shape& sample_shape, const GuardRails& rails) {
  const auto allocate = [&](double f) { return allocate_global(groups, scores, f, rails); };
  return allocate(largest_fraction_within(model, groups, fraction, flops, sample_shape, allocate));
}

}  // namespace shrink::prune
