// MultiheadAttention: self-attention over (B, T, d_model) with separate Q, K, V and output
// projections (children q_proj, k_proj, v_proj, out_proj, each a Linear), as
// torch.nn.MultiheadAttention computes it in eval mode (its packed in_proj_weight is these
// three weights stacked; scripts/export_torch_encoder.py splits it).
//
// The head count is not stored: it is q_proj's output width over the stored head dimension,
// so a model whose heads were pruned (fewer Q/K/V rows, fewer out_proj columns) knows its
// heads. Every width is checked against the others (check_invariants), so a checkpoint with
// inconsistent Q/K/V widths is refused naming the tensor.
#pragma once
#include <cstdint>

#include "nn/module.h"

namespace shrink {
class Generator;
}

namespace shrink::nn {

class MultiheadAttention : public Module {
 public:
  // d_model must be divisible by heads; head_dim = d_model / heads. Q, K, V weights are
  // xavier-uniform over the stacked (3 d_model, d_model) matrix and their biases zero, out_proj
  // Linear's default weight and a zero bias (PyTorch's _reset_parameters).
  MultiheadAttention(std::int64_t d_model, std::int64_t heads, bool bias, Generator& gen);
  std::string type_name() const override { return "MultiheadAttention"; }
  std::string extra_repr() const override;
  void check_invariants() const override;

  std::int64_t d_model() const;  // input and output width
  std::int64_t head_dim() const { return head_dim_; }
  std::int64_t heads() const;  // q_proj rows / head_dim

 protected:
  // x (B, T, d_model) -> (B, T, d_model); extra: none, or {mask} with mask an additive bias
  // that broadcasts to the scores (B, heads, T, T), e.g. attention_mask_bias(attention_mask).
  Tensor forward(const Tensor& x) override;
  Tensor forward_with(const Tensor& x, const std::vector<Tensor>& extra) override;

 private:
  Tensor attend(const Tensor& x, const Tensor& mask);
  std::int64_t head_dim_;
};

}  // namespace shrink::nn
