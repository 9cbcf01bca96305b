// Unstructured SAP (Diao et al. ICLR 2023, Alg. 1 and §3.2) and the LT / OS baselines,
// with the survivors stored physically as nn::SparseLinear (CSR).
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>

#include "core/autograd.h"
#include "core/error.h"
#include "nn/linear.h"
#include "nn/sparse_linear.h"
#include "prune/sap.h"

namespace shrink::prune {

namespace {

// A prunable layer's stored entries as CSR on the host (a dense Linear: every entry).
struct Layer {
  std::string name;
  std::vector<std::int64_t> row_ptr, col_idx;
  std::vector<double> weight;  // current values (nnz)
  std::vector<double> score;   // what is ranked: |weight|, or |reference| for OS
  std::vector<char> keep;
};

std::vector<double> host(const Tensor& t) {
  return t.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
}

std::vector<Layer> gather(const nn::Module& model) {
  std::vector<Layer> layers;
  for (const auto& [name, m] : model.named_modules()) {
    Layer l;
    l.name = name;
    if (dynamic_cast<const nn::Linear*>(m) || dynamic_cast<const nn::SparseLinear*>(m))
      SHRINK_CHECK(!name.empty(), "unstructured pruning: the model is itself a ", m->type_name(),
                   "; wrap it in a Sequential so the layer can be replaced");
    if (const auto* dense = dynamic_cast<const nn::Linear*>(m)) {
      const std::int64_t out = dense->out_features(), in = dense->in_features();
      l.weight = host(dense->weight());
      for (std::int64_t r = 0; r <= out; ++r) l.row_ptr.push_back(r * in);
      for (std::int64_t r = 0; r < out; ++r)
        for (std::int64_t c = 0; c < in; ++c) l.col_idx.push_back(c);
    } else if (const auto* sparse = dynamic_cast<const nn::SparseLinear*>(m)) {
      try {  // set_buffer / set_parameter could have replaced a CSR tensor unchecked
        sparse->check_invariants();
      } catch (const Error& e) {
        fail("unstructured pruning: layer '", name, "' (SparseLinear): ", e.what());
      }
      l.weight = host(sparse->values());
      l.row_ptr = sparse->row_ptr().to(Device::cpu()).to_vector<std::int64_t>();
      l.col_idx = sparse->col_idx().to(Device::cpu()).to_vector<std::int64_t>();
    } else {
      // The paper prunes every weight with more than one dimension: a weighted layer this
      // pass cannot store sparse is an error, never skipped (BatchNorm's vectors are 1-D).
      for (const auto& [tensor, value] : m->named_parameters())
        SHRINK_CHECK(value.dim() <= 1 || tensor.find('.') != std::string::npos, "unstructured pruning: layer '",
                     name, "' (", m->type_name(), ") has a ", value.dim(), "-D '", tensor,
                     "' and no sparse form yet (Linear and SparseLinear layers have one); prune its channels "
                     "structurally instead (shrink-prune)");
      continue;
    }
    for (double w : l.weight) l.score.push_back(std::abs(w));
    l.keep.assign(l.weight.size(), 1);
    layers.push_back(std::move(l));
  }
  SHRINK_CHECK(!layers.empty(), "unstructured pruning: the model has no Linear or SparseLinear");
  return layers;
}

// A scope unit: entry ranges [begin, end) of some layers.
struct Span {
  std::size_t layer;
  std::int64_t begin, end;
};
struct Unit {
  std::string name;
  std::vector<Span> spans;
};

std::vector<Unit> scope_units(const std::vector<Layer>& layers, Scope scope) {
  std::vector<Unit> units;
  if (scope == Scope::Global) units.push_back({"global", {}});
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
    const std::int64_t nnz = static_cast<std::int64_t>(l.weight.size());
    if (scope == Scope::Global) units[0].spans.push_back({i, 0, nnz});
    if (scope == Scope::Layer) units.push_back({l.name, {{i, 0, nnz}}});
    if (scope == Scope::Neuron)
      for (std::size_t r = 0; r + 1 < l.row_ptr.size(); ++r)
        units.push_back({l.name + "[" + std::to_string(r) + "]", {{i, l.row_ptr[r], l.row_ptr[r + 1]}}});
  }
  return units;
}

// Decides c for a unit from its nonzero weights (and fills the report's d, pqi, r).
using CountRule = std::function<std::int64_t(const std::vector<double>& weights, ScopeReport&)>;

// Prunes one unit: thr = sorted_asc(score over nonzero weights)[c]; score < thr goes, and
// so does every stored zero (a masked entry in the paper's code).
void prune_unit(std::vector<Layer>& layers, const Unit& unit, const CountRule& rule,
                ScopeReport& rep) {
  std::vector<double> weights, scores;
  for (const Span& s : unit.spans)
    for (std::int64_t e = s.begin; e < s.end; ++e)
      if (layers[s.layer].weight[e] != 0) {
        weights.push_back(layers[s.layer].weight[e]);
        scores.push_back(layers[s.layer].score[e]);
      }
  rep.name = unit.name;
  rep.prune = std::max<std::int64_t>(0, rule(weights, rep));
  const auto c = static_cast<std::size_t>(rep.prune);
  if (c < scores.size()) {
    std::nth_element(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(c), scores.end());
    rep.threshold = scores[c];
  } else {
    rep.threshold = std::numeric_limits<double>::infinity();
  }
  for (const Span& s : unit.spans)
    for (std::int64_t e = s.begin; e < s.end; ++e) {
      Layer& l = layers[s.layer];
      if (l.weight[e] == 0 || l.score[e] < rep.threshold) {
        l.keep[e] = 0;
        ++rep.removed;
      }
    }
}

std::int64_t stored(const std::vector<Layer>& layers) {
  std::int64_t n = 0;
  for (const Layer& l : layers) n += static_cast<std::int64_t>(l.weight.size());
  return n;
}

// Scores (already set), prunes every unit, rebuilds each layer as a SparseLinear, rewinds.
RoundReport run_round(nn::Module& model, std::vector<Layer>& layers, const nn::StateDict& init,
                      Scope scope, const CountRule& rule) {
  RoundReport report;
  report.remaining_before = stored(layers);
  for (const Unit& unit : scope_units(layers, scope)) {
    ScopeReport rep;
    prune_unit(layers, unit, rule, rep);
    report.scopes.push_back(rep);
  }
  for (const Layer& l : layers) {
    const auto& m = *model.child(l.name);
    std::shared_ptr<nn::SparseLinear> fresh;
    if (const auto* dense = dynamic_cast<const nn::Linear*>(&m)) {
      const std::int64_t in = dense->in_features();
      fresh = nn::SparseLinear::from_dense(*dense, [&](std::int64_t r, std::int64_t c, double) {
        return l.keep[r * in + c] != 0;
      });
    } else {
      fresh = dynamic_cast<const nn::SparseLinear&>(m).pruned([&](std::int64_t e) { return l.keep[e] != 0; });
    }
    report.layer_remaining[l.name] = fresh->nnz();
    report.remaining += fresh->nnz();
    model.set_child(l.name, fresh);
  }
  if (!init.empty()) rewind(model, init);
  return report;
}

// The tensors a dense ancestor of `model` holds, in the model's order: its own, except
// that a SparseLinear's values/row_ptr/col_idx stand for its dense (out, in) "weight".
std::vector<std::pair<std::string, Shape>> dense_ancestor_shapes(const nn::Module& model) {
  std::map<std::string, const nn::SparseLinear*> sparse_by_tensor;  // "<layer>.values" etc.
  for (const auto& [name, m] : model.named_modules())
    if (const auto* sparse = dynamic_cast<const nn::SparseLinear*>(m))
      for (const char* csr : {"values", "row_ptr", "col_idx"})
        sparse_by_tensor[(name.empty() ? "" : name + ".") + csr] = sparse;
  nn::NamedTensors own = model.named_parameters();
  for (auto& entry : model.named_buffers()) own.push_back(entry);
  std::vector<std::pair<std::string, Shape>> shapes;
  for (const auto& [name, t] : own) {
    auto sparse = sparse_by_tensor.find(name);
    if (sparse == sparse_by_tensor.end()) {
      shapes.emplace_back(name, t.shape());
    } else if (name.ends_with("values")) {  // the layer's one dense counterpart
      const std::string prefix = name.substr(0, name.size() - std::string("values").size());
      shapes.emplace_back(prefix + "weight",
                          Shape{sparse->second->out_features(), sparse->second->in_features()});
    }
  }
  return shapes;
}

// One-shot ranks entry (r, c) of each layer by |reference weight[r, c]|: the reference must
// be the model's dense ancestor, tensor for tensor and shape for shape, or the ranking
// would read outside its tensors (or rank by another network's weights).
void check_reference(const nn::Module& model, const nn::StateDict& reference,
                     const std::string& reference_name) {
  const auto expected = dense_ancestor_shapes(model);
  for (const auto& [name, shape] : expected) {
    auto it = reference.find(name);
    SHRINK_CHECK(it != reference.end(), "one-shot pruning: reference ", reference_name,
                 " has no tensor '", name, "' (the model's is ", shape_str(shape),
                 "); the reference must be the first dense trained model of the same architecture");
    SHRINK_CHECK(it->second.defined() && it->second.shape() == shape, "one-shot pruning: reference ",
                 reference_name, ": tensor '", name, "' has shape ",
                 it->second.defined() ? shape_str(it->second.shape()) : std::string("(undefined)"),
                 " but the model's is ", shape_str(shape),
                 "; the reference must be the first dense trained model of the same architecture");
  }
  for (const auto& [name, t] : reference)
    SHRINK_CHECK(std::any_of(expected.begin(), expected.end(),
                             [&](const auto& e) { return e.first == name; }),
                 "one-shot pruning: reference ", reference_name,
                 ": tensor '", name, "' ", t.defined() ? shape_str(t.shape()) : std::string(""),
                 " has no counterpart in the model (its layers differ in kind; a layer the model "
                 "stores sparse must be a dense Linear in the reference)");
}

CountRule fraction_rule(double fraction) {
  SHRINK_CHECK(fraction >= 0 && fraction < 1, "pruning fraction must be in [0, 1), got ", fraction);
  return [fraction](const std::vector<double>& w, ScopeReport& rep) {
    rep.d = static_cast<std::int64_t>(w.size());
    rep.pqi = pq_index(w);
    return static_cast<std::int64_t>(std::floor(fraction * static_cast<double>(rep.d)));
  };
}

}  // namespace

Scope parse_scope(const std::string& name) {
  if (name == "global") return Scope::Global;
  if (name == "layer") return Scope::Layer;
  if (name == "neuron") return Scope::Neuron;
  fail("unknown pruning scope '", name, "'; valid: global, layer, neuron");
}

const char* scope_name(Scope scope) {
  switch (scope) {
    case Scope::Global: return "global";
    case Scope::Layer: return "layer";
    case Scope::Neuron: return "neuron";
  }
  return "?";
}

std::int64_t remaining_weights(const nn::Module& model) {
  std::int64_t n = 0;
  for (const auto& [name, m] : model.named_modules()) {
    if (const auto* dense = dynamic_cast<const nn::Linear*>(m)) n += dense->weight().numel();
    if (const auto* sparse = dynamic_cast<const nn::SparseLinear*>(m)) n += sparse->nnz();
  }
  return n;
}

RoundReport sap_unstructured_round(nn::Module& model, const nn::StateDict& init_state, Scope scope,
                                   const SapOptions& options) {
  std::vector<Layer> layers = gather(model);
  return run_round(model, layers, init_state, scope,
                   [&options](const std::vector<double>& w, ScopeReport& rep) {
                     // I, r = ceil(d (1+eta)^{-q/(q-p)} (1-I)^{qp/(q-p)}), c (§3.1).
                     const PqiDecision dec = pqi_decide(w, options);
                     rep.d = dec.d;
                     rep.pqi = dec.index;
                     rep.keep_bound = dec.keep_bound;
                     return dec.prune;
                   });
}

RoundReport lottery_round(nn::Module& model, const nn::StateDict& init_state, Scope scope,
                          double fraction) {
  std::vector<Layer> layers = gather(model);
  return run_round(model, layers, init_state, scope, fraction_rule(fraction));
}

RoundReport one_shot_mask_round(nn::Module& model, const nn::StateDict& init_state,
                                const nn::StateDict& reference_state, Scope scope,
                                double fraction, const std::string& reference_name) {
  std::vector<Layer> layers = gather(model);
  check_reference(model, reference_state, reference_name);
  for (Layer& l : layers) {  // rank by the first dense trained model's magnitudes
    const Tensor& weight = reference_state.at(l.name + ".weight");  // (out, in): checked
    const std::vector<double> ref = host(weight);
    const std::int64_t in = weight.size(1);
    for (std::size_t r = 0; r + 1 < l.row_ptr.size(); ++r)
      for (std::int64_t e = l.row_ptr[r]; e < l.row_ptr[r + 1]; ++e)
        l.score[e] = std::abs(ref[static_cast<std::int64_t>(r) * in + l.col_idx[e]]);
  }
  return run_round(model, layers, init_state, scope, fraction_rule(fraction));
}

void rewind(nn::Module& model, const nn::StateDict& init_state) {
  NoGradGuard no_grad;
  std::vector<std::string> csr_tensors;  // handled below, not by name
  for (const auto& [name, m] : model.named_modules()) {
    auto* sparse = dynamic_cast<nn::SparseLinear*>(m);
    if (!sparse) continue;
    const std::string prefix = name.empty() ? "" : name + ".";
    for (const char* t : {"values", "row_ptr", "col_idx"}) csr_tensors.push_back(prefix + t);
    Tensor values = sparse->values();
    auto same = init_state.find(prefix + "values");
    if (same != init_state.end() && same->second.shape() == values.shape()) {
      values.copy_(same->second.detach().to(values.device()).to(values.dtype()));
      continue;
    }
    auto dense = init_state.find(prefix + "weight");
    SHRINK_CHECK(dense != init_state.end() && dense->second.dim() == 2 &&
                     dense->second.size(0) == sparse->out_features() &&
                     dense->second.size(1) == sparse->in_features(),
                 "rewind: init state has no dense '", prefix, "weight' of shape (",
                 sparse->out_features(), ", ", sparse->in_features(), ")");
    // values[e] = W_init[row(e), col(e)]
    const std::vector<double> w = host(dense->second);
    const auto rows = sparse->entry_rows();
    const auto cols = sparse->col_idx().to(Device::cpu()).to_vector<std::int64_t>();
    std::vector<double> v(rows.size());
    for (std::size_t e = 0; e < v.size(); ++e) v[e] = w[rows[e] * sparse->in_features() + cols[e]];
    values.copy_(Tensor::from_vector(v, values.shape()).to(values.dtype()).to(values.device()));
  }
  nn::NamedTensors own = model.named_parameters();
  for (auto& entry : model.named_buffers()) own.push_back(entry);
  for (auto& [name, t] : own) {
    if (std::find(csr_tensors.begin(), csr_tensors.end(), name) != csr_tensors.end()) continue;
    auto it = init_state.find(name);
    if (it == init_state.end() || it->second.shape() != t.shape()) continue;
    Tensor target = t;
    target.copy_(it->second.detach().to(t.device()).to(t.dtype()));
  }
}

}  // namespace shrink::prune
