// Structured SAP: the PQI rule of Diao et al. (ICLR 2023) applied to unit norms.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/ops.h"
#include "prune/criteria.h"
#include "prune/sap.h"
#include "prune/slice.h"

namespace shrink::prune {

std::vector<double> unit_norms(const nn::Module& model, const Group& group) {
  return score_magnitude(model, group, 2);  // the same L2 norm the magnitude-l2 criterion scores
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
                                                   nn::Optimizer* optimizer, bool fold_shift) {
  // Decide (and rank) everything on the unpruned model, then rewrite.
  const auto decisions = sap_structured_decide(model, groups, options);
  std::vector<std::vector<std::int64_t>> kept;
  for (std::size_t i = 0; i < groups.size(); ++i)
    kept.push_back(top_k(unit_norms(model, groups[i]), decisions[i].keep));
  std::map<std::string, double> pqi;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (decisions[i].keep < decisions[i].units) shrink_group(model, groups[i], kept[i], optimizer, fold_shift);
    pqi[groups[i].name] = decisions[i].pqi.index;
  }
  return pqi;
}

}  // namespace shrink::prune
