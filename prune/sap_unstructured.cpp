// Unstructured SAP (Diao et al. ICLR 2023, Alg. 1 and §3.2) and the LT / OS baselines,
// with the survivors stored physically as nn::SparseLinear / nn::SparseConv2d (CSR): every
// weight of more than one dimension is pruned, Linear and Conv2d (depthwise and grouped too).
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>

#include "core/autograd.h"
#include "core/error.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/sparse_conv.h"
#include "nn/sparse_linear.h"
#include "prune/sap.h"

namespace shrink::prune {

namespace {

// A prunable layer's stored entries as CSR on the host (a dense Linear or Conv2d: every
// entry), each with its place in the dense weight (row-major (out, in) or (out, in / groups,
// kh, kw)).
struct Layer {
  std::string name;
  std::vector<std::int64_t> row_ptr, offset;
  std::vector<double> weight;  // current values (nnz)
  std::vector<double> score;   // what is ranked: |weight|, or |reference| for OS
  std::vector<char> keep;
};

std::vector<double> host(const Tensor& t) {
  return t.detach().to(Device::cpu()).to(DType::Float64).to_vector<double>();
}

bool is_dense(const nn::Module* m) {
  return dynamic_cast<const nn::Linear*>(m) || dynamic_cast<const nn::Conv2d*>(m);
}
bool is_sparse(const nn::Module* m) {
  return dynamic_cast<const nn::SparseLinear*>(m) || dynamic_cast<const nn::SparseConv2d*>(m);
}

// The dense weight's shape a prunable layer stands for.
Shape dense_weight_shape(const nn::Module& m) {
  if (const auto* s = dynamic_cast<const nn::SparseLinear*>(&m)) return {s->out_features(), s->in_features()};
  if (const auto* c = dynamic_cast<const nn::SparseConv2d*>(&m)) {
    const nn::Conv2dGeometry& g = c->geometry();
    return {c->out_channels(), c->in_channels() / g.groups, g.kernel_h, g.kernel_w};
  }
  return m.parameter("weight").shape();
}

// Each stored entry's place in the dense weight (a dense layer: 0, 1, ...).
std::vector<std::int64_t> dense_offsets(const nn::Module& m) {
  if (const auto* c = dynamic_cast<const nn::SparseConv2d*>(&m)) return c->dense_offsets();
  if (const auto* s = dynamic_cast<const nn::SparseLinear*>(&m)) {
    const auto rows = s->entry_rows();
    const auto cols = s->col_idx().to(Device::cpu()).to_vector<std::int64_t>();
    std::vector<std::int64_t> offsets(rows.size());
    for (std::size_t e = 0; e < rows.size(); ++e) offsets[e] = rows[e] * s->in_features() + cols[e];
    return offsets;
  }
  std::vector<std::int64_t> offsets(static_cast<std::size_t>(m.parameter("weight").numel()));
  for (std::size_t e = 0; e < offsets.size(); ++e) offsets[e] = static_cast<std::int64_t>(e);
  return offsets;
}

std::vector<Layer> gather(const nn::Module& model) {
  std::vector<Layer> layers;
  for (const auto& [name, m] : model.named_modules()) {
    Layer l;
    l.name = name;
    if (is_dense(m) || is_sparse(m))
      SHRINK_CHECK(!name.empty(), "unstructured pruning: the model is itself a ", m->type_name(),
                   "; wrap it in a Sequential so the layer can be replaced");
    if (is_dense(m)) {
      const Tensor& w = m->parameter("weight");
      const std::int64_t out = w.size(0), row_length = w.numel() / std::max<std::int64_t>(out, 1);
      l.weight = host(w);
      for (std::int64_t r = 0; r <= out; ++r) l.row_ptr.push_back(r * row_length);
    } else if (is_sparse(m)) {
      try {  // set_buffer / set_parameter could have replaced a CSR tensor unchecked
        m->check_invariants();
      } catch (const Error& e) {
        fail("unstructured pruning: layer '", name, "' (", m->type_name(), "): ", e.what());
      }
      l.weight = host(m->parameter("values"));
      l.row_ptr = m->buffer("row_ptr").to(Device::cpu()).to_vector<std::int64_t>();
    } else {
      // The paper prunes every weight with more than one dimension: a weighted layer this
      // pass cannot store sparse is an error, never skipped (BatchNorm's vectors are 1-D).
      for (const auto& [tensor, value] : m->named_parameters())
        SHRINK_CHECK(value.dim() <= 1 || tensor.find('.') != std::string::npos, "unstructured pruning: layer '",
                     name, "' (", m->type_name(), ") has a ", value.dim(), "-D '", tensor,
                     "' and no sparse form yet (Linear and Conv2d layers have one); prune its channels "
                     "structurally instead (shrink-prune)");
      continue;
    }
    l.offset = dense_offsets(*m);
    for (double w : l.weight) l.score.push_back(std::abs(w));
    l.keep.assign(l.weight.size(), 1);
    layers.push_back(std::move(l));
  }
  SHRINK_CHECK(!layers.empty(), "unstructured pruning: the model has no Linear or Conv2d layer (dense or sparse)");
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
  // A layer with no weight left outputs its bias whatever its input: the model would predict
  // one class for every sample (sap with a large gamma and beta 1 asks for that). Refused
  // before any layer is rebuilt, as structured pruning never empties a group.
  for (const Layer& l : layers)
    SHRINK_CHECK(l.keep.empty() || std::find(l.keep.begin(), l.keep.end(), char{1}) != l.keep.end(),
                 "unstructured pruning: this round would remove all ", l.keep.size(), " weights of layer '", l.name,
                 "', after which it outputs its bias whatever its input; ask for less (sap: "
                 "a smaller gamma or beta; lottery and one-shot: a smaller fraction)");
  for (const Layer& l : layers) {
    const auto& m = *model.child(l.name);
    std::shared_ptr<nn::Module> fresh;
    const auto kept = [&](std::int64_t e) { return l.keep[e] != 0; };
    if (const auto* linear = dynamic_cast<const nn::Linear*>(&m)) {
      const std::int64_t in = linear->in_features();
      fresh = nn::SparseLinear::from_dense(*linear, [&](std::int64_t r, std::int64_t c, double) {
        return kept(r * in + c);
      });
    } else if (const auto* conv = dynamic_cast<const nn::Conv2d*>(&m)) {
      // Entry e of row r is column c of r's group block: e = r row_length + c % row_length.
      const std::int64_t row_length = conv->weight().numel() / conv->out_channels();
      fresh = nn::SparseConv2d::from_dense(*conv, [&](std::int64_t r, std::int64_t c, double) {
        return kept(r * row_length + c % row_length);
      });
    } else if (const auto* sparse = dynamic_cast<const nn::SparseLinear*>(&m)) {
      fresh = sparse->pruned(kept);
    } else {
      fresh = dynamic_cast<const nn::SparseConv2d&>(m).pruned(kept);
    }
    const std::int64_t nnz = fresh->parameter("values").numel();
    report.layer_remaining[l.name] = nnz;
    report.remaining += nnz;
    model.set_child(l.name, fresh);
  }
  if (!init.empty()) rewind(model, init);
  return report;
}

// The tensors a dense ancestor of `model` holds, in the model's order: its own, except
// that a sparse layer's values/row_ptr/col_idx stand for its dense "weight".
std::vector<std::pair<std::string, Shape>> dense_ancestor_shapes(const nn::Module& model) {
  std::map<std::string, const nn::Module*> sparse_by_tensor;  // "<layer>.values" etc.
  for (const auto& [name, m] : model.named_modules())
    if (is_sparse(m))
      for (const char* csr : {"values", "row_ptr", "col_idx"})
        sparse_by_tensor[(name.empty() ? "" : name + ".") + csr] = m;
  nn::NamedTensors own = model.named_parameters();
  for (auto& entry : model.named_buffers()) own.push_back(entry);
  std::vector<std::pair<std::string, Shape>> shapes;
  for (const auto& [name, t] : own) {
    auto sparse = sparse_by_tensor.find(name);
    if (sparse == sparse_by_tensor.end()) {
      shapes.emplace_back(name, t.shape());
    } else if (name.ends_with("values")) {  // the layer's one dense counterpart
      const std::string prefix = name.substr(0, name.size() - std::string("values").size());
      shapes.emplace_back(prefix + "weight", dense_weight_shape(*sparse->second));
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
                 "stores sparse must be a dense Linear or Conv2d in the reference)");
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
    if (is_dense(m)) n += m->parameter("weight").numel();
    if (is_sparse(m)) n += m->parameter("values").numel();
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
    const std::vector<double> ref = host(reference_state.at(l.name + ".weight"));  // shape checked
    for (std::size_t e = 0; e < l.score.size(); ++e) l.score[e] = std::abs(ref[l.offset[e]]);
  }
  return run_round(model, layers, init_state, scope, fraction_rule(fraction));
}

void rewind(nn::Module& model, const nn::StateDict& init_state) {
  NoGradGuard no_grad;
  std::vector<std::string> csr_tensors;  // handled below, not by name
  for (const auto& [name, m] : model.named_modules()) {
    if (!is_sparse(m)) continue;
    const std::string prefix = name.empty() ? "" : name + ".";
    for (const char* t : {"values", "row_ptr", "col_idx"}) csr_tensors.push_back(prefix + t);
    Tensor values = m->parameter("values");
    auto same = init_state.find(prefix + "values");
    if (same != init_state.end() && same->second.shape() == values.shape()) {
      values.copy_(same->second.detach().to(values.device()).to(values.dtype()));
      continue;
    }
    const Shape shape = dense_weight_shape(*m);
    auto dense = init_state.find(prefix + "weight");
    SHRINK_CHECK(dense != init_state.end() && dense->second.shape() == shape, "rewind: init state has no dense '",
                 prefix, "weight' of shape ", shape_str(shape));
    // values[e] = W_init at the entry's place
    const std::vector<double> w = host(dense->second);
    const auto offsets = dense_offsets(*m);
    std::vector<double> v(offsets.size());
    for (std::size_t e = 0; e < v.size(); ++e) v[e] = w[offsets[e]];
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
