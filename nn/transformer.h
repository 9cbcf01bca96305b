// The transformer encoder: TransformerEncoderLayer and TransformerEncoder with the children
// and parameter names of torch.nn.TransformerEncoderLayer / TransformerEncoder, except that
// the attention's packed in_proj is stored as q_proj / k_proj / v_proj (nn/attention.h):
//   layers.{i}.self_attn.{q,k,v,out}_proj.{weight,bias}  (PyTorch: in_proj_weight rows
//                                                         [0,d) [d,2d) [2d,3d), out_proj)
//   layers.{i}.linear1 / linear2 / norm1 / norm2          (the same names)
//   norm                                                  (the stack's final LayerNorm)
// Pre-LN (norm_first, the default here, as ViT):  x += drop1(attn(norm1(x)));
//                                                 x += drop2(linear2(drop(act(linear1(norm2(x))))))
// Post-LN (BERT, PyTorch's default):               x = norm1(x + drop1(attn(x)));
//                                                 x = norm2(x + drop2(ff(x)))
// Dropout acts on the residual branches and inside the FFN; the attention weights are not
// dropped (PyTorch also drops them in training; in eval mode the two agree exactly).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.h"

namespace shrink {
class Generator;
}

namespace shrink::nn {

struct EncoderOptions {
  std::int64_t d_model = 128, heads = 4, ffn = 512, layers = 4;
  double dropout = 0.1;
  std::string activation = "gelu";  // "relu", "gelu", "gelu_tanh"
  bool norm_first = true;
  bool final_norm = true;  // a LayerNorm after the last layer (usual with pre-LN)
  double eps = 1e-5;
};

class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(const EncoderOptions& o, Generator& gen);
  std::string type_name() const override { return "TransformerEncoderLayer"; }
  std::string extra_repr() const override;
  bool norm_first() const { return norm_first_; }
  // The attention heads ("self_attn": a head's head_dim rows of q/k/v_proj and its columns of
  // out_proj, read by out_proj) and the FFN neurons ("linear1": its rows, linear2's columns).
  std::vector<DeclaredGroup> declared_groups() const override;

 protected:
  // x (B, T, d_model); extra: none or {mask}, the attention's additive mask.
  Tensor forward(const Tensor& x) override;
  Tensor forward_with(const Tensor& x, const std::vector<Tensor>& extra) override;

 private:
  Tensor run(const Tensor& x, const std::vector<Tensor>& mask);
  Tensor feed_forward(const Tensor& x);
  bool norm_first_;
};

// layers (children "0".."n-1" of a container "layers") and an optional final "norm".
class TransformerEncoder : public Module {
 public:
  TransformerEncoder(const EncoderOptions& o, Generator& gen);
  std::string type_name() const override { return "TransformerEncoder"; }
  std::int64_t num_layers() const;

 protected:
  Tensor forward(const Tensor& x) override;
  Tensor forward_with(const Tensor& x, const std::vector<Tensor>& extra) override;
};

}  // namespace shrink::nn
