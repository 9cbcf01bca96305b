// The differentiable ops. Each is a free function that computes its result with a
// kernel and records the closure for its input gradients (see core/autograd.h); the
// forward and backward of an op live together in one file under core/ops/.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace shrink {

class Generator;

// ---- elementwise arithmetic with NumPy broadcasting (core/ops/arithmetic.cpp) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
// relu(a + b) in one pass over memory (a residual block's add and ReLU); the same values and
// gradients as the two ops.
Tensor add_relu(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor add_scalar(const Tensor& x, double s);
Tensor mul_scalar(const Tensor& x, double s);
// Sums `grad` over broadcast axes so it has `shape` (the adjoint of broadcasting).
Tensor sum_to(const Tensor& grad, const Shape& shape);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& x, double s) { return add_scalar(x, s); }
inline Tensor operator-(const Tensor& x, double s) { return add_scalar(x, -s); }
inline Tensor operator*(const Tensor& x, double s) { return mul_scalar(x, s); }
inline Tensor operator/(const Tensor& x, double s) { return mul_scalar(x, 1.0 / s); }
inline Tensor operator*(double s, const Tensor& x) { return mul_scalar(x, s); }

// ---- pointwise math and activations (core/ops/pointwise.cpp) ----
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor abs(const Tensor& x);
Tensor square(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor gelu(const Tensor& x);  // exact: x * Phi(x), as PyTorch's default
// The tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch's
// gelu(x, approximate='tanh') (BERT's and GPT-2's).
Tensor gelu_tanh(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);

// ---- matrix products (core/ops/matmul.cpp) ----
// (m,k)@(k,n); (b,m,k)@(b,k,n) or (k,n); (m,k)@(b,k,n); leading batch dims are flattened.
Tensor matmul(const Tensor& a, const Tensor& b);
// y = x @ w^T + b with w (out, in): the Linear layer's op, without materialising w^T.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// Scaled dot-product attention over the last two axes (core/ops/attention.cpp):
// softmax(q k^T * scale + mask) v for q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv) with the
// same leading axes ((B, H, T, d) for multi-head attention), as
// torch.nn.functional.scaled_dot_product_attention with a float attn_mask. `mask`, when
// defined, is additive, of q's dtype, and broadcasts to the scores (..., Tq, Tk): 0 where a
// query may attend, a large negative number where it may not (attention_mask_bias). scale 0
// means 1/sqrt(d).
//
// Two implementations give the same result (tests/test_attention_fused.cpp): the fused kernel
// (kernels attention / attention_backward: blocked with an online softmax, no score matrix
// stored, the backward recomputing the scores from one log-sum-exp per query) and the
// composite of matmul, softmax and the rest, whose gradient is theirs. Auto takes the fused
// one unless the mask needs a gradient (the kernel does not produce one) or its broadcast
// pattern over the leading axes is not two strided groups; Fused insists (an error says why
// it cannot), Composite is the reference.
enum class AttentionKernel { Auto, Fused, Composite };
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& mask = Tensor(), double scale = 0,
                                    AttentionKernel kernel = AttentionKernel::Auto);
// Multi-head attention on the projections' own layout, so no head is ever permuted into
// place: q (B, Tq, heads * d), k (B, Tk, heads * d), v (B, Tk, heads * dv) -> (B, Tq, heads * dv),
// head h being features [h d, (h + 1) d). Equal to splitting the heads ((B, heads, T, d)),
// scaled_dot_product_attention and merging them back; the mask broadcasts to
// (B, heads, Tq, Tk). scale 0 means 1/sqrt(d).
Tensor multi_head_attention(const Tensor& q, const Tensor& k, const Tensor& v, std::int64_t heads,
                            const Tensor& mask = Tensor(), double scale = 0,
                            AttentionKernel kernel = AttentionKernel::Auto);
// The additive mask (B, 1, 1, T) of a padding mask (B, T) that holds 1 for a real token and 0
// for padding (the Hugging Face attention_mask convention): 0 for a token, -1e9 for padding,
// as `dtype`. -1e9 rather than -inf keeps a row that is all padding finite.
Tensor attention_mask_bias(const Tensor& attention_mask, DType dtype);

// ---- convolution, pooling, batch normalisation over NCHW (core/ops/conv.cpp, pool.cpp,
// batch_norm.cpp) ----
struct Conv2dOptions {
  std::int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  std::int64_t groups = 1;
};
// y (n, c_out, out_h, out_w) = x (n, c_in, h, w) cross-correlated with weight
// (c_out, c_in / groups, kh, kw), plus bias (c_out) when defined. FLOPs: 2 n c_out out_h out_w
// (c_in / groups) kh kw (+ n c_out out_h out_w for the bias).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o = {});
// The activation conv2d_then may end with.
enum class ConvActivation { None, Relu, Relu6 };
// act(conv2d(x, weight, bias) + residual): conv2d, then `residual` (undefined: none; else
// exactly conv2d's output shape) added, then the activation, with those ops' values and
// FLOPs (conv2d's). Where no input needs a gradient, the convolution kernel adds the residual
// and activates as it writes each output (a residual block's add and ReLU cost no passes over
// memory of their own); otherwise the separate ops run, so gradients flow as through them.
Tensor conv2d_then(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o,
                   const Tensor& residual, ConvActivation activation);
// A residual block with an identity shortcut: x -> relu(conv2d(relu(conv2d(x, w1, b1, o1)), w2, b2, o2) + x)
// (the second convolution's output shaped as x; b1, b2 may be undefined).
struct ResidualBlockWeights {
  Tensor w1, b1;
  Conv2dOptions o1;
  Tensor w2, b2;
  Conv2dOptions o2;
};
// The blocks in turn, each one's output the next one's input and shortcut, with those ops'
// values (the same bits where conv2d would pick the chain's kernel for a convolution; within
// Winograd's rounding of it on the 32x32 layers it gives the batched Winograd) and FLOPs (the
// convolutions'). Where no input needs a gradient and x is on the CPU, one
// kernel call, which keeps the maps between the convolutions in the kernels' own layout where it
// can (kernels/cpu/conv_winograd_channels_last.h); otherwise conv2d_then twice a block.
Tensor conv2d_residual_chain(const Tensor& x, const std::vector<ResidualBlockWeights>& blocks);
// A MobileNetV2 inverted residual block:
//   x -> conv2d(relu6(conv2d(relu6(conv2d(x, expand)), depthwise)), project) (+ x when residual)
// each conv2d with its weight, bias (may be undefined) and options. An undefined expand_weight
// means no expand (expand ratio 1): the depthwise convolution reads x.
struct InvertedResidualWeights {
  Tensor expand_weight, expand_bias;
  Conv2dOptions expand_options;
  Tensor depthwise_weight, depthwise_bias;
  Conv2dOptions depthwise_options;
  Tensor project_weight, project_bias;
  Conv2dOptions project_options;
  bool residual = false;  // add x (the project's output shaped as x)
};
// The blocks in turn, each one's output the next one's input, with those ops' values (within a
// few ulps: the fused kernel may order a sum differently) and FLOPs (the convolutions'). Where no
// input needs a gradient and x is on the CPU, one kernel call, which keeps the maps between the
// convolutions channels-last where it can (kernels/cpu/inverted_residual_channels_last.h);
// otherwise conv2d_then for each convolution.
Tensor inverted_residual_chain(const Tensor& x, const std::vector<InvertedResidualWeights>& blocks);
struct Pool2dOptions {
  std::int64_t kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2, pad_h = 0, pad_w = 0;
};
// x (n, c, h, w); padding at most half the kernel (PyTorch's rule). Max pooling's gradient goes
// to each window's first maximum; a NaN is a window's maximum (the last NaN, as PyTorch).
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& o);
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& o);  // padding counted in the divisor
// PyTorch's adaptive windows; (1, 1) is global average pooling.
Tensor adaptive_avg_pool2d(const Tensor& x, std::int64_t out_h, std::int64_t out_w);
// x (n, c, *): training normalises with the batch's statistics and, when defined, updates
// running_mean / running_var in place (momentum, unbiased variance; never recorded for
// autograd); evaluation normalises with the running statistics. gamma / beta (c) may be
// undefined (no affine). Training needs more than one value per channel (n * spatial > 1), as
// PyTorch: the unbiased variance of one value is undefined.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor running_mean,
                  Tensor running_var, bool training, double momentum = 0.1, double eps = 1e-5);
// Layer normalisation over x's last axis (core/ops/layer_norm.cpp): each row normalised by
// its mean and biased variance, then times gamma plus beta (dim), either of which may be
// undefined, as torch.nn.functional.layer_norm(x, (dim,), gamma, beta, eps).
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5);

// ---- dense solves (core/ops/solve.cpp; not differentiable) ----
// X (n, m) with G X = B, for G (n, n) symmetric positive definite (only its lower triangle is
// read) and B (n, m): a Cholesky factorisation G = L L^T and two triangular solves (kernels
// cholesky, triangular_solve). Throws naming the first non-positive pivot when G is not
// positive definite, and refuses inputs that require gradients (no backward is defined).
Tensor cholesky_solve(const Tensor& g, const Tensor& b);

// ---- sparse products (core/ops/sparse.cpp) ----
// y = x W^T + b with W (out, in_features) in CSR form: row_ptr (out + 1) and col_idx (nnz)
// int64, values (nnz) floating, the layer of nn::SparseLinear. Differentiable in x, values
// and bias (dx = dy W, dvalues[e] = sum_n dy[n, row(e)] x[n, col(e)]); CPU only.
Tensor csr_linear(const Tensor& x, const Tensor& values, const Tensor& row_ptr,
                  const Tensor& col_idx, std::int64_t in_features, const Tensor& bias);
// A convolution (as conv2d with `o`) whose weight (c_out, c_in / groups, kh, kw) is stored as
// CSR over the unfolded input of ALL channels: row r (out channel) holds columns
// (c, ky, kx) -> c kh kw + ky kw + kx with c an input channel of r's group (checked), the
// layer of nn::SparseConv2d. c_out = row_ptr's size - 1. FLOPs: 2 nnz per output position
// (+ 1 per output for the bias). Differentiable in x, values and bias; CPU only.
Tensor csr_conv2d(const Tensor& x, const Tensor& values, const Tensor& row_ptr, const Tensor& col_idx,
                  std::int64_t kernel_h, std::int64_t kernel_w, const Tensor& bias,
                  const Conv2dOptions& o = {});

// ---- reductions (core/ops/reduce.cpp) ----
Tensor sum(const Tensor& x);  // all elements -> scalar tensor of shape ()
Tensor sum(const Tensor& x, std::vector<std::int64_t> axes, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, std::vector<std::int64_t> axes, bool keepdim = false);
// Max along one axis; the gradient flows to the first maximal element.
Tensor max(const Tensor& x, std::int64_t axis, bool keepdim = false);
// Index of the max along `axis` (int64, not differentiable).
Tensor argmax(const Tensor& x, std::int64_t axis, bool keepdim = false);

// The L1 (p = 1) or L2 (p = 2) norm of each slice x[..., u, ...] along `axis`, as a float64
// tensor (x.size(axis)) on x's device, summed in double: pruning's magnitude scores. Not
// differentiable. (core/ops/norms.cpp)
Tensor unit_norms(const Tensor& x, std::int64_t axis, int p);

// ---- softmax and losses (core/ops/softmax.cpp) ----
Tensor softmax(const Tensor& x, std::int64_t axis = -1);
Tensor log_softmax(const Tensor& x, std::int64_t axis = -1);
// Mean cross-entropy of logits (n, c) against int64 class indices (n), with label smoothing.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0.0);

// ---- dropout (core/ops/dropout.cpp) ----
// Zeroes each element with probability p and scales the rest by 1/(1-p) when `training`.
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

// ---- embeddings (core/ops/embedding.cpp) ----
// Rows of weight (vocabulary, dim) at int64 ids of any shape -> ids.shape + (dim), as
// torch.nn.functional.embedding. An id outside [0, vocabulary) throws naming it and the
// vocabulary. The gradient scatter-adds into weight (repeated ids accumulate).
Tensor embedding(const Tensor& ids, const Tensor& weight);

// ---- layout (core/ops/layout.cpp); reshape is in core/tensor.h ----
Tensor flatten(const Tensor& x, std::int64_t start_axis = 1);
// Broadcasts x to `shape` (NumPy rules) as a materialised copy; backward is sum_to.
Tensor expand(const Tensor& x, const Shape& shape);
Tensor transpose(const Tensor& x, std::int64_t axis0, std::int64_t axis1);
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& order);
Tensor concat(const std::vector<Tensor>& parts, std::int64_t axis);
// Elements [start, end) with `step` along `axis` (end clamps to the size).
Tensor slice(const Tensor& x, std::int64_t axis, std::int64_t start, std::int64_t end,
             std::int64_t step = 1);
// Rows `indices` (int64, 1-D) along `axis`: the primitive that physical pruning uses.
Tensor index_select(const Tensor& x, std::int64_t axis, const Tensor& indices);
// out[..., j, ...] = x[..., indices[..., j, ...], ...] along `axis` (torch.gather); indices
// (int64) have x's sizes on every other axis. Backward scatter-adds (core/ops/gather.cpp).
Tensor gather(const Tensor& x, std::int64_t axis, const Tensor& indices);

// ---- comparisons (not differentiable) ----
// Fraction of rows whose argmax equals the label.
double accuracy(const Tensor& logits, const Tensor& labels);

// ---- value checks (not differentiable) ----
// Flat position of the first NaN or +-Inf element, or -1 when every element is finite
// (int64 tensors always are). Runs on the tensor's device and reads back one scalar.
std::int64_t first_nonfinite(const Tensor& x);
// first_nonfinite of each tensor (all on one device; undefined ones give -1), reading the
// answers back in one copy: one device synchronisation for a whole model's gradients.
std::vector<std::int64_t> first_nonfinite_each(const std::vector<Tensor>& xs);
// Describes that element for error messages: "nan at element 17 (index [0, 17])".
std::string nonfinite_str(const Tensor& x, std::int64_t position);
// The first of `named` (in order; undefined tensors skipped) holding NaN or +-Inf, described
// as "'0.weight' holds inf at element 5 (...)", or "" when all are finite. One device sync.
std::string first_nonfinite_named(const std::vector<std::pair<std::string, Tensor>>& named);

}  // namespace shrink
