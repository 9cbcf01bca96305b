#include "nn/attention.h"

#include <cmath>

#include "core/ops.h"
#include "core/random.h"
#include "nn/linear.h"

namespace shrink::nn {

namespace {

const Linear& linear_child(const Module& m, const char* name) {
  const auto child = std::dynamic_pointer_cast<Linear>(m.child(name));
  SHRINK_CHECK(child != nullptr, "MultiheadAttention: child '", name, "' must be a Linear");
  return *child;
}

}  // namespace

MultiheadAttention::MultiheadAttention(std::int64_t d_model, std::int64_t heads, bool bias, Generator& gen) {
  SHRINK_CHECK(d_model > 0 && heads > 0, "MultiheadAttention: d_model (", d_model, ") and heads (", heads,
               ") must be > 0");
  SHRINK_CHECK(d_model % heads == 0, "MultiheadAttention: d_model (", d_model, ") must be divisible by heads (",
               heads, ")");
  head_dim_ = d_model / heads;
  // xavier_uniform on the stacked (3 d, d) in_proj_weight: bound sqrt(6 / (d + 3 d)).
  const double bound = std::sqrt(6.0 / static_cast<double>(4 * d_model));
  for (const char* name : {"q_proj", "k_proj", "v_proj"}) {
    Tensor w = Tensor::uniform({d_model, d_model}, -bound, bound, gen);
    register_module(name, std::make_shared<Linear>(w, bias ? Tensor::zeros({d_model}) : Tensor()));
  }
  auto out = std::make_shared<Linear>(d_model, d_model, bias, gen);
  if (bias) out->set_parameter("bias", Tensor::zeros({d_model}));
  register_module("out_proj", out);
}

std::int64_t MultiheadAttention::d_model() const { return linear_child(*this, "q_proj").in_features(); }

std::int64_t MultiheadAttention::heads() const {
  return linear_child(*this, "q_proj").out_features() / head_dim_;
}

std::string MultiheadAttention::extra_repr() const {
  return "d_model=" + std::to_string(d_model()) + ", heads=" + std::to_string(heads()) +
         ", head_dim=" + std::to_string(head_dim_);
}

void MultiheadAttention::check_invariants() const {
  const Linear &q = linear_child(*this, "q_proj"), &k = linear_child(*this, "k_proj"),
               &v = linear_child(*this, "v_proj"), &o = linear_child(*this, "out_proj");
  const auto shape = [](const Linear& l) { return shape_str(l.weight().shape()); };
  SHRINK_CHECK(q.out_features() % head_dim_ == 0, "MultiheadAttention: q_proj.weight ", shape(q),
               " has a row count that is not a multiple of the head dimension ", head_dim_);
  for (const auto& [name, l] : {std::pair<const char*, const Linear*>{"k_proj", &k}, {"v_proj", &v}}) {
    SHRINK_CHECK(l->out_features() == q.out_features(), "MultiheadAttention: ", name, ".weight ", shape(*l),
                 " must have as many rows as q_proj.weight ", shape(q), " (", q.out_features() / head_dim_,
                 " heads of ", head_dim_, ")");
    SHRINK_CHECK(l->in_features() == q.in_features(), "MultiheadAttention: ", name, ".weight ", shape(*l),
                 " must read q_proj.weight's d_model ", q.in_features(), " (", shape(q), ")");
  }
  SHRINK_CHECK(o.in_features() == v.out_features(), "MultiheadAttention: out_proj.weight ", shape(o),
               " must have a column per row of v_proj.weight ", shape(v));
  SHRINK_CHECK(o.out_features() == q.in_features(), "MultiheadAttention: out_proj.weight ", shape(o),
               " must return to d_model ", q.in_features(), " (q_proj.weight ", shape(q), ")");
}

Tensor MultiheadAttention::forward(const Tensor& x) { return attend(x, Tensor()); }

Tensor MultiheadAttention::forward_with(const Tensor& x, const std::vector<Tensor>& extra) {
  SHRINK_CHECK(extra.size() <= 1, "MultiheadAttention: takes x and an optional mask, got ", extra.size(),
               " extra inputs");
  return attend(x, extra.empty() ? Tensor() : extra[0]);
}

Tensor MultiheadAttention::attend(const Tensor& x, const Tensor& mask) {
  SHRINK_CHECK(x.dim() == 3 && x.size(2) == d_model(), "MultiheadAttention: input must be (batch, tokens, ",
               d_model(), "), got ", shape_str(x.shape()));
  Module &q = *child("q_proj"), &k = *child("k_proj"), &v = *child("v_proj"), &o = *child("out_proj");
  // The heads stay interleaved in the projections' (B, T, heads * head_dim) layout: the fused
  // kernel reads each head's columns in place, and its output is out_proj's input as is.
  return o(multi_head_attention(q(x), k(x), v(x), heads(), mask));
}

}  // namespace shrink::nn
