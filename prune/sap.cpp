// Structured SAP: the PQI rule of Diao et al. (ICLR 2023) applied to unit norms.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/ops.h"
#include "prune/sap.h"
#include "prune/slice.h"

namespace shrink::prune {

namespace {

// The member that holds the producer's incoming weights (e.g. "1.weight", axis 0).
// The input group has no producer: its only member, the consumer's columns, holds the
// weights of each input feature.
const Member& producer_weight(const nn::Module& model, const Group& group) {
  if (group.is_input()) return group.members.front();
  for (const Member& m : group.members)
    if (m.tensor == group.producer + ".weight" && model.has_parameter(m.tensor)) return m;
  fail("sap: group '", group.name, "' has no member '", group.producer, ".weight'");
}

// Indices of the `keep` largest norms, ascending (ties: the lower index stays).
std::vector<std::int64_t> largest(const std::vector<double>& norms, std::int64_t keep) {
  std::vector<std::int64_t> order(norms.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return norms[a] > norms[b]; });
  order.resize(static_cast<std::size_t>(keep));
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace

std::vector<double> unit_norms(const nn::Module& model, const Group& group) {
  const Member& m = producer_weight(model, group);
  // L2 norm of each slice along the group's axis, on the weight's device (core unit_norms).
  return shrink::unit_norms(model.parameter(m.tensor), m.axis, 2).to_vector<double>();
}

std::vector<StructuredSapDecision> sap_structured_decide(const nn::Module& model,
                                                         const std::vector<Group>& groups,
                                                         const SapOptions& options) {
  std::vector<StructuredSapDecision> out;
  for (const Group& g : groups) {
    const std::vector<double> norms = unit_norms(model, g);
    StructuredSapDecision dec;
    dec.group = g.name;
    dec.units = static_cast<std::int64_t>(norms.size());
    // I, r and c of ALGORITHMS.md §3.1 over the vector of unit norms (d = nonzero norms).
    dec.pqi = pqi_decide(norms, options);
    dec.keep = std::max<std::int64_t>(1, dec.units - dec.pqi.prune);  // never below one unit
    out.push_back(dec);
  }
  return out;
}

std::map<std::string, std::int64_t> sap_structured_keep(const nn::Module& model,
                                                        const std::vector<Group>& groups,
                                                        const SapOptions& options) {
  std::map<std::string, std::int64_t> out;
  for (const auto& dec : sap_structured_decide(model, groups, options)) out[dec.group] = dec.keep;
  return out;
}

std::map<std::string, double> sap_structured_prune(nn::Module& model, std::vector<Group>& groups,
                                                   const SapOptions& options,
                                                   nn::Optimizer* optimizer) {
  // Decide (and rank) everything on the unpruned model, then rewrite.
  const auto decisions = sap_structured_decide(model, groups, options);
  std::vector<std::vector<std::int64_t>> kept;
  for (std::size_t i = 0; i < groups.size(); ++i)
    kept.push_back(largest(unit_norms(model, groups[i]), decisions[i].keep));
  std::map<std::string, double> pqi;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (decisions[i].keep < decisions[i].units) shrink_group(model, groups[i], kept[i], optimizer);
    pqi[groups[i].name] = decisions[i].pqi.index;
  }
  return pqi;
}

}  // namespace shrink::prune
