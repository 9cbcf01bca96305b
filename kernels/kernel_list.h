// The one list of compute kernels. Every entry is
//   SHRINK_KERNEL(name, (parameters), (argument names))
// and this file is included (without an include guard) wherever the list must be expanded:
// kernels/backend.h makes each entry a virtual method of `Backend` whose default throws
// kernels::Unsupported naming the kernel and the device; kernels/cpu/cpu_backend.h and
// kernels/cuda/cuda_backend_impl.h make each entry an override declaration. A kernel added
// here is therefore declared in all three places at once.
//
// SHRINK_CPU_ONLY_KERNEL marks entries the CUDA backend does not provide yet (it expands to
// SHRINK_KERNEL unless the includer defines it, as CudaBackend does to skip them); on CUDA
// they throw Unsupported, and their cross-device tests say so.
//
// All pointers are device pointers of the backend's device; buffers are contiguous unless
// strides are passed explicitly. Kernels are pure: nothing but their outputs is written.
#ifndef SHRINK_KERNEL
#error "define SHRINK_KERNEL(name, params, args) before including kernels/kernel_list.h"
#endif
#ifndef SHRINK_CPU_ONLY_KERNEL
#define SHRINK_CPU_ONLY_KERNEL SHRINK_KERNEL
#endif
// SHRINK_VALUE_CHECK_KERNEL marks the checks whose one-number answer the host reads back to
// decide whether to throw; it expands to SHRINK_KERNEL unless the includer defines it, as the
// shape-only backend does (kernels/shape_only.h: it answers "nothing wrong" without reading).
#ifndef SHRINK_VALUE_CHECK_KERNEL
#define SHRINK_VALUE_CHECK_KERNEL SHRINK_KERNEL
#endif

// ---- elementwise ----
SHRINK_KERNEL(fill, (DType t, std::int64_t n, double value, void* out), (t, n, value, out))
// 0, 1, ..., n-1
SHRINK_KERNEL(arange, (DType t, std::int64_t n, void* out), (t, n, out))
SHRINK_KERNEL(cast, (DType from, DType to, std::int64_t n, const void* in, void* out),
              (from, to, n, in, out))
// out[i] = a[...] op b[...] with broadcasting described by `s`.
SHRINK_KERNEL(binary, (BinaryOp op, DType t, const BroadcastShape& s, const void* a,
                       const void* b, void* out),
              (op, t, s, a, b, out))
SHRINK_KERNEL(unary, (UnaryOp op, DType t, std::int64_t n, double alpha, const void* x, void* y),
              (op, t, n, alpha, x, y))
// dx = dy * f'(x); x and y = f(x) are given, each op reads one of them
// (formulas::unary_grad_reads_output says which; autograd passes that one as both).
SHRINK_KERNEL(unary_backward, (UnaryOp op, DType t, std::int64_t n, double alpha, const void* x,
                               const void* y, const void* dy, void* dx),
              (op, t, n, alpha, x, y, dy, dx))
// y = x * mask / (1 - p) with mask ~ Bernoulli(1 - p) drawn from Philox(seed, offset); the
// mask (0 or 1/(1-p)) is written too so that backward is dy * mask.
SHRINK_KERNEL(dropout, (DType t, std::int64_t n, double p, std::uint64_t seed,
                        std::uint64_t offset, const void* x, void* y, void* mask),
              (t, n, p, seed, offset, x, y, mask))
// Philox-driven fills: uniform in [lo, hi) or normal(mean, std).
SHRINK_KERNEL(random_uniform, (DType t, std::int64_t n, double lo, double hi, std::uint64_t seed,
                               std::uint64_t offset, void* out),
              (t, n, lo, hi, seed, offset, out))
SHRINK_KERNEL(random_normal, (DType t, std::int64_t n, double mean, double stddev,
                              std::uint64_t seed, std::uint64_t offset, void* out),
              (t, n, mean, stddev, seed, offset, out))

// ---- data movement ----
// out (contiguous, `shape`) = in read through `in_strides` (elements).
SHRINK_KERNEL(strided_copy, (DType t, int ndim, const std::int64_t* shape,
                             const std::int64_t* in_strides, const void* in, void* out),
              (t, ndim, shape, in_strides, in, out))
// in: (outer, in_dim, inner), idx: (n_idx) int64 -> out: (outer, n_idx, inner)
SHRINK_KERNEL(index_select, (DType t, std::int64_t outer, std::int64_t in_dim,
                             std::int64_t inner, const void* in, std::int64_t n_idx,
                             const std::int64_t* idx, void* out),
              (t, outer, in_dim, inner, in, n_idx, idx, out))
// Adjoint of index_select: grad_in (outer, in_dim, inner) += scatter of grad_out.
SHRINK_KERNEL(index_add, (DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                          std::int64_t n_idx, const std::int64_t* idx, const void* grad_out,
                          void* grad_in),
              (t, outer, in_dim, inner, n_idx, idx, grad_out, grad_in))
// Gather along an axis with one index per output element:
//   out[o, j, i] = in[o, idx[o, j, i], i]
// in: (outer, in_dim, inner), idx: (outer, n_idx, inner) int64 -> out: (outer, n_idx, inner).
SHRINK_KERNEL(gather, (DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                       const void* in, std::int64_t n_idx, const std::int64_t* idx, void* out),
              (t, outer, in_dim, inner, in, n_idx, idx, out))
// Adjoint of gather: out[o, idx[o, j, i], i] += src[o, j, i] for out (outer, in_dim, inner)
// and src, idx (outer, n_idx, inner). Repeated indices add up in j order (deterministic).
SHRINK_KERNEL(scatter_add, (DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                            std::int64_t n_idx, const std::int64_t* idx, const void* src,
                            void* out),
              (t, outer, in_dim, inner, n_idx, idx, src, out))
// Index validation without copying indices to the host: writes to *first_bad (one int64 in
// device memory) the smallest position i with idx[i] outside [0, bound), or n when all are
// in range.
SHRINK_VALUE_CHECK_KERNEL(find_out_of_range, (std::int64_t n, const std::int64_t* idx, std::int64_t bound,
                                              std::int64_t* first_bad),
                          (n, idx, bound, first_bad))

// Finite-value check without copying data to the host: writes to *first_bad (one int64 in
// device memory) the smallest position i with x[i] NaN or +-Inf, or n when all are finite.
// Int64 data is always finite. Used by training's fault checks and checkpoint loading.
SHRINK_VALUE_CHECK_KERNEL(find_nonfinite, (DType t, std::int64_t n, const void* x, std::int64_t* first_bad),
                          (t, n, x, first_bad))

// ---- reductions over the middle axis of (outer, reduce, inner) ----
// Sum writes out (outer, inner). Max also writes argmax (int64) when `argmax` is non-null.
SHRINK_KERNEL(reduce, (ReduceOp op, DType t, std::int64_t outer, std::int64_t reduce,
                       std::int64_t inner, const void* in, void* out, std::int64_t* argmax),
              (op, t, outer, reduce, inner, in, out, argmax))

// ---- per-unit norms (pruning's magnitude scores) ----
// Lp norm of each unit's slice of a (outer, units, inner) view:
//   out[u] = (sum over o, i of |in[o, u, i]|^p)^(1/p),  p = 1 or 2,
// accumulated and written in double whatever t is: pruning ranks units by these, and a
// float accumulator would round near-equal norms into ties. One unit's sum has a fixed order.
SHRINK_KERNEL(unit_norm, (DType t, int p, std::int64_t outer, std::int64_t units,
                          std::int64_t inner, const void* in, double* out),
              (t, p, outer, units, inner, in, out))

// ---- linear algebra ----
// Row-major C(m,n) = alpha * op(A) op(B) + beta * C, batched with element strides
// (stride 0 broadcasts an operand across the batch).
SHRINK_KERNEL(gemm, (DType t, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
                     std::int64_t k, double alpha, const void* a, std::int64_t lda,
                     std::int64_t stride_a, const void* b, std::int64_t ldb,
                     std::int64_t stride_b, double beta, void* c, std::int64_t ldc,
                     std::int64_t stride_c, std::int64_t batch),
              (t, trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c,
               ldc, stride_c, batch))

// ---- convolution over NCHW (kernels/cpu/conv.cpp, cuda/conv.cu; shape in kernel_types.h) ----
// y = conv(x, weight) (+ bias (c_out) when non-null), then `post` (kernel_types.h: + residual,
// activation); y is overwritten and must not overlap post.residual.
SHRINK_KERNEL(conv2d, (DType t, const Conv2dShape& s, const void* x, const void* weight,
                       const void* bias, const ConvEpilogue& post, void* y),
              (t, s, x, weight, bias, post, y))
// A chain of residual blocks with identity shortcuts, for inference (no gradients): block b maps
// x_b to x_{b+1} = relu(conv(relu(conv(x_b, w1[b]) + b1[b]), w2[b]) + b2[b] + x_b) with conv shapes
// s1[b] and s2[b] (x_{b+1} shaped as x_b); x_0 = x, y = x_blocks. Arrays of `blocks` entries; a
// bias may be null.
SHRINK_CPU_ONLY_KERNEL(conv2d_residual_chain,
                       (DType t, std::int64_t blocks, const Conv2dShape* s1, const Conv2dShape* s2, const void* x,
                        const void* const* w1, const void* const* b1, const void* const* w2, const void* const* b2,
                        void* y),
                       (t, blocks, s1, s2, x, w1, b1, w2, b2, y))
// A chain of MobileNetV2 inverted residual blocks (kernel_types.h InvertedResidualBlock), for
// inference (no gradients): block b's output is block b + 1's input; x is block 0's input, y the
// last block's output.
SHRINK_CPU_ONLY_KERNEL(inverted_residual_chain,
                       (DType t, std::int64_t blocks, const InvertedResidualBlock* b, const void* x, void* y),
                       (t, blocks, b, x, y))
// dx = the adjoint of conv in x applied to dy (overwrites dx).
SHRINK_KERNEL(conv2d_backward_input, (DType t, const Conv2dShape& s, const void* weight,
                                      const void* dy, void* dx),
              (t, s, weight, dy, dx))
// dweight = sum over samples and positions of dy x-patch (overwrites dweight; the bias
// gradient is a plain per-channel sum, done by core).
SHRINK_KERNEL(conv2d_backward_weight, (DType t, const Conv2dShape& s, const void* x,
                                       const void* dy, void* dweight),
              (t, s, x, dy, dweight))

// ---- pooling over NCHW (kernels/cpu/pool.cpp, cuda/pool.cu; shape in kernel_types.h) ----
// y = pool(x). Max also writes `argmax` (int64, like y): the input position h * w_in + w of
// each output's maximum within its plane (the first one on ties, NaN wins); average ignores it.
SHRINK_KERNEL(pool2d, (PoolOp op, DType t, const Pool2dShape& s, const void* x, void* y,
                       std::int64_t* argmax),
              (op, t, s, x, y, argmax))
// dx (overwritten) from dy: max routes each dy to its argmax, average spreads it over the window.
SHRINK_KERNEL(pool2d_backward, (PoolOp op, DType t, const Pool2dShape& s, const void* dy,
                                const std::int64_t* argmax, void* dx),
              (op, t, s, dy, argmax, dx))
// Adaptive average pooling of (planes, h, w) to (planes, out_h, out_w), PyTorch's windows:
// rows [floor(i h / out_h), ceil((i + 1) h / out_h)), columns likewise.
SHRINK_KERNEL(adaptive_avg_pool2d, (DType t, std::int64_t planes, std::int64_t h,
                                    std::int64_t w, std::int64_t out_h, std::int64_t out_w,
                                    const void* x, void* y),
              (t, planes, h, w, out_h, out_w, x, y))
SHRINK_KERNEL(adaptive_avg_pool2d_backward, (DType t, std::int64_t planes, std::int64_t h,
                                             std::int64_t w, std::int64_t out_h,
                                             std::int64_t out_w, const void* dy, void* dx),
              (t, planes, h, w, out_h, out_w, dy, dx))

// ---- batch normalisation over (n, c, hw) (kernels/cpu/batch_norm.cpp, cuda/batch_norm.cu) ----
// Training: per-channel mean and biased variance over n and hw; save_mean / save_invstd (c)
// receive mean and 1 / sqrt(var + eps); running_mean / running_var (c, may be null) become
// (1 - momentum) running + momentum batch, with the unbiased variance (n hw / (n hw - 1)),
// as PyTorch and cuDNN. Evaluation (training false): the running statistics normalise and
// save_* are not written. y = (x - mean) invstd gamma + beta; gamma / beta may be null (1, 0).
// Statistics are accumulated in double in a fixed order.
SHRINK_KERNEL(batch_norm, (DType t, std::int64_t n, std::int64_t c, std::int64_t hw,
                           bool training, double momentum, double eps, const void* x,
                           const void* gamma, const void* beta, void* running_mean,
                           void* running_var, void* save_mean, void* save_invstd, void* y),
              (t, n, c, hw, training, momentum, eps, x, gamma, beta, running_mean,
               running_var, save_mean, save_invstd, y))
// Gradients of batch_norm given the statistics it used (mean, invstd per channel: the saved
// batch ones in training, the running ones in evaluation): dx (always), dgamma and dbeta (c)
// when non-null; x may be null in evaluation mode when dgamma and dbeta are (dx = gamma invstd dy
// then). Training mode includes the statistics' dependence on x:
//   dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)), xhat = (x - mean) invstd.
SHRINK_KERNEL(batch_norm_backward, (DType t, std::int64_t n, std::int64_t c,
                                    std::int64_t hw, bool training, const void* x,
                                    const void* dy, const void* gamma, const void* mean,
                                    const void* invstd, void* dx, void* dgamma,
                                    void* dbeta),
              (t, n, c, hw, training, x, dy, gamma, mean, invstd, dx, dgamma, dbeta))

// ---- dense symmetric positive definite solves (kernels/cpu/cholesky.cpp, cuda/cholesky.cu) ----
// Cholesky factorisation of a row-major symmetric (n, n) matrix `a` (only its lower triangle
// is read): l (n, n) receives L, lower triangular with a = L L^T, and zeros above the
// diagonal. *info (one int64 in device memory) receives n on success, or the index j of the
// first pivot that is not positive (a NaN pivot counts), when the leading (j+1) x (j+1)
// block is not positive definite; l is then unspecified.
SHRINK_KERNEL(cholesky, (DType t, std::int64_t n, const void* a, void* l, std::int64_t* info),
              (t, n, a, l, info))
// Triangular solve with many right-hand sides: x (n, nrhs) = L^-1 b (transpose false) or
// L^-T b (transpose true), for L (n, n) lower triangular with a non-zero diagonal (as
// `cholesky` writes it; the upper triangle is not read), b and x row-major (n, nrhs).
SHRINK_KERNEL(triangular_solve, (DType t, std::int64_t n, std::int64_t nrhs, const void* l,
                                 bool transpose, const void* b, void* x),
              (t, n, nrhs, l, transpose, b, x))

// ---- sparse (CSR) linear layer y = x W^T + b, W (rows, cols) as row_ptr (rows + 1),
// col_idx (nnz), values (nnz); the caller has validated the structure ----
// y (batch, rows) = x (batch, cols) W^T (+ bias (rows) when non-null).
SHRINK_CPU_ONLY_KERNEL(csr_linear, (DType t, std::int64_t batch, std::int64_t rows,
                                    std::int64_t cols, const std::int64_t* row_ptr,
                                    const std::int64_t* col_idx, const void* values,
                                    const void* x, const void* bias, void* y),
                       (t, batch, rows, cols, row_ptr, col_idx, values, x, bias, y))
// dx (batch, cols) = dy (batch, rows) W (overwrites dx).
SHRINK_CPU_ONLY_KERNEL(csr_linear_backward_input,
                       (DType t, std::int64_t batch, std::int64_t rows, std::int64_t cols,
                        const std::int64_t* row_ptr, const std::int64_t* col_idx,
                        const void* values, const void* dy, void* dx),
                       (t, batch, rows, cols, row_ptr, col_idx, values, dy, dx))
// dvalues[e] = sum_n dy[n, row(e)] x[n, col(e)] (overwrites dvalues).
SHRINK_CPU_ONLY_KERNEL(csr_sampled_gradient,
                       (DType t, std::int64_t batch, std::int64_t rows, std::int64_t cols,
                        const std::int64_t* row_ptr, const std::int64_t* col_idx,
                        const void* dy, const void* x, void* dvalues),
                       (t, batch, rows, cols, row_ptr, col_idx, dy, x, dvalues))
// Sparse convolution (nn::SparseConv2d): y (n, c_out, oh, ow) = W col(x) + bias, where col(x)
// is the unfolded input over ALL c_in channels (rows (c, ky, kx), kernels/cpu/im2col.h) and W
// (c_out, c_in kh kw) is CSR; a grouped conv's rows only hold columns of their own group's
// channels (the caller checks), so one matrix covers every `groups`. bias may be null.
SHRINK_CPU_ONLY_KERNEL(csr_conv2d, (DType t, const Conv2dShape& s, const std::int64_t* row_ptr,
                                    const std::int64_t* col_idx, const void* values,
                                    const void* x, const void* bias, void* y),
                       (t, s, row_ptr, col_idx, values, x, bias, y))
// dx (n, c_in, h, w) = col2im(W^T dy) (overwrites dx).
SHRINK_CPU_ONLY_KERNEL(csr_conv2d_backward_input,
                       (DType t, const Conv2dShape& s, const std::int64_t* row_ptr,
                        const std::int64_t* col_idx, const void* values, const void* dy, void* dx),
                       (t, s, row_ptr, col_idx, values, dy, dx))
// dvalues[e] = sum over images and positions of dy[:, row(e), :] col(x)[col(e), :]
// (overwrites dvalues).
SHRINK_CPU_ONLY_KERNEL(csr_conv2d_backward_values,
                       (DType t, const Conv2dShape& s, const std::int64_t* row_ptr,
                        const std::int64_t* col_idx, const void* x, const void* dy, void* dvalues),
                       (t, s, row_ptr, col_idx, x, dy, dvalues))

// ---- softmax family over the middle axis of (outer, dim, inner) ----
SHRINK_KERNEL(softmax, (DType t, bool log, std::int64_t outer, std::int64_t dim,
                        std::int64_t inner, const void* x, void* y),
              (t, log, outer, dim, inner, x, y))
// dx from y = softmax (or log_softmax) output and dy.
SHRINK_KERNEL(softmax_backward, (DType t, bool log, std::int64_t outer, std::int64_t dim,
                                 std::int64_t inner, const void* y, const void* dy, void* dx),
              (t, log, outer, dim, inner, y, dy, dx))
// Fused cross-entropy over logits (n, c) and int64 labels with label smoothing eps:
// loss_i = -(1-eps) log p[i, y_i] - eps/c * sum_j log p[i, j]. Writes per-sample loss (n)
// and the probabilities (n, c) that backward needs. Labels outside [0, c) are the
// caller's responsibility (core/ checks them before calling).
SHRINK_KERNEL(cross_entropy, (DType t, std::int64_t n, std::int64_t c, double smoothing,
                              const void* logits, const std::int64_t* labels, void* loss,
                              void* probs),
              (t, n, c, smoothing, logits, labels, loss, probs))
// grad_logits = scale * (probs - target_distribution)
SHRINK_KERNEL(cross_entropy_backward, (DType t, std::int64_t n, std::int64_t c, double smoothing,
                                       double scale, const void* probs,
                                       const std::int64_t* labels, void* grad_logits),
              (t, n, c, smoothing, scale, probs, labels, grad_logits))

// ---- layer normalisation over the last axis of (rows, dim) (kernels/formulas/layer_norm.h) ----
// y = (x - mean) rstd gamma + beta per row, rstd = 1 / sqrt(var + eps) with the biased
// variance; gamma and beta (dim) may be null (no affine). Writes each row's mean and rstd
// (rows) for the backward pass.
SHRINK_KERNEL(layer_norm, (DType t, std::int64_t rows, std::int64_t dim, double eps, const void* x,
                           const void* gamma, const void* beta, void* y, void* mean, void* rstd),
              (t, rows, dim, eps, x, gamma, beta, y, mean, rstd))
// dx (overwritten) from x, gamma (or null), the forward's mean and rstd, and dy; when non-null,
// dgamma = sum over rows of dy xhat and dbeta = sum over rows of dy (dim, overwritten), summed
// in an order fixed by the shape alone.
SHRINK_KERNEL(layer_norm_backward, (DType t, std::int64_t rows, std::int64_t dim, const void* x,
                                    const void* gamma, const void* mean, const void* rstd,
                                    const void* dy, void* dx, void* dgamma, void* dbeta),
              (t, rows, dim, x, gamma, mean, rstd, dy, dx, dgamma, dbeta))

// ---- fused scaled dot-product attention (AttentionShape: kernels/kernel_types.h; formulas:
// kernels/formulas/attention.h) ----
// out = softmax(scale q k^T + mask) v per problem, never holding a whole score matrix; writes
// each score row's log-sum-exp (lse) for the backward. mask may be null.
SHRINK_KERNEL(attention, (DType t, const AttentionShape& s, const void* q, const void* k, const void* v,
                          const void* mask, void* out, void* lse),
              (t, s, q, k, v, mask, out, lse))
// dq, dk, dv (overwritten, in q's, k's and v's layouts) from the forward's inputs, out and lse
// and dout (out's layout); delta (problems, tq) = rowwise dout . out is written on the way.
SHRINK_KERNEL(attention_backward, (DType t, const AttentionShape& s, const void* q, const void* k,
                                   const void* v, const void* mask, const void* out, const void* lse,
                                   const void* dout, void* delta, void* dq, void* dk, void* dv),
              (t, s, q, k, v, mask, out, lse, dout, delta, dq, dk, dv))

// ---- optimizer updates (in place over one parameter of n elements) ----
SHRINK_KERNEL(sgd_step, (DType t, std::int64_t n, const SgdParams& p, void* param,
                         const void* grad, void* momentum_buffer),
              (t, n, p, param, grad, momentum_buffer))
SHRINK_KERNEL(adamw_step, (DType t, std::int64_t n, const AdamWParams& p, void* param,
                           const void* grad, void* exp_avg, void* exp_avg_sq),
              (t, n, p, param, grad, exp_avg, exp_avg_sq))

#undef SHRINK_KERNEL
#undef SHRINK_CPU_ONLY_KERNEL
#undef SHRINK_VALUE_CHECK_KERNEL
