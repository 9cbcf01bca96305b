// The one compute interface. Every device implements `Backend`; ops in core/ call
// `kernels::backend(device)` and never know which implementation runs (ggml-style).
// Kernels are pure: pointers, sizes and strides in, nothing but their outputs written.
// All pointers are device pointers of the backend's device. Buffers are contiguous
// unless strides are passed explicitly.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/error.h"
#include "kernels/types.h"

namespace shrink::kernels {

// Thrown by a backend for an operation it does not provide (a shrink::Error, so callers
// see one exception type).
struct Unsupported : Error {
  using Error::Error;
};

constexpr int kMaxDims = 8;

// A broadcast elementwise problem after dimension collapsing: the output is contiguous with
// `shape`; operand strides are in elements and are 0 along broadcast axes.
struct BroadcastShape {
  int ndim = 0;
  std::int64_t shape[kMaxDims] = {};
  std::int64_t stride_a[kMaxDims] = {};
  std::int64_t stride_b[kMaxDims] = {};
};

enum class BinaryOp : std::uint8_t { Add, Sub, Mul, Div };

// y = f(x, alpha). The backward kind takes (x, y, dy) and writes dx.
enum class UnaryOp : std::uint8_t {
  Neg, Exp, Log, Sqrt, Relu, Relu6, Gelu, Tanh, Sigmoid,
  PowScalar,   // x^alpha
  AddScalar,   // x + alpha
  MulScalar,   // x * alpha
  Abs, Sign, Square,
};

enum class ReduceOp : std::uint8_t { Sum, Max };

// One optimizer update over one parameter tensor, fused into a single pass.
struct SgdParams {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
  bool first_step = false;  // PyTorch initialises the buffer to the first gradient
};
struct AdamWParams {
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  std::int64_t step = 1;  // 1-based, for bias correction
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- memory ----
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* ptr, std::size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void synchronize() {}

  // ---- elementwise ----
  virtual void fill(DType t, std::int64_t n, double value, void* out) = 0;
  virtual void arange(DType t, std::int64_t n, void* out) = 0;  // 0, 1, ..., n-1
  virtual void cast(DType from, DType to, std::int64_t n, const void* in, void* out) = 0;
  // out[i] = a[...] op b[...] with broadcasting described by `s`.
  virtual void binary(BinaryOp op, DType t, const BroadcastShape& s, const void* a,
                      const void* b, void* out) = 0;
  virtual void unary(UnaryOp op, DType t, std::int64_t n, double alpha, const void* x,
                     void* y) = 0;
  // dx = dy * f'(x); both x and y = f(x) are given (each op reads what is cheaper).
  virtual void unary_backward(UnaryOp op, DType t, std::int64_t n, double alpha, const void* x,
                              const void* y, const void* dy, void* dx) = 0;
  // y = x * mask / (1 - p) with mask ~ Bernoulli(1 - p) drawn from Philox(seed, offset); the
  // mask (0 or 1/(1-p)) is written too so that backward is dy * mask.
  virtual void dropout(DType t, std::int64_t n, double p, std::uint64_t seed,
                       std::uint64_t offset, const void* x, void* y, void* mask) = 0;
  // Philox-driven fills: uniform in [lo, hi) or normal(mean, std).
  virtual void random_uniform(DType t, std::int64_t n, double lo, double hi, std::uint64_t seed,
                              std::uint64_t offset, void* out) = 0;
  virtual void random_normal(DType t, std::int64_t n, double mean, double stddev,
                             std::uint64_t seed, std::uint64_t offset, void* out) = 0;

  // ---- data movement ----
  // out (contiguous, `shape`) = in read through `in_strides` (elements).
  virtual void strided_copy(DType t, int ndim, const std::int64_t* shape,
                            const std::int64_t* in_strides, const void* in, void* out) = 0;
  // in: (outer, in_dim, inner), idx: (n_idx) int64 -> out: (outer, n_idx, inner)
  virtual void index_select(DType t, std::int64_t outer, std::int64_t in_dim,
                            std::int64_t inner, const void* in, std::int64_t n_idx,
                            const std::int64_t* idx, void* out) = 0;
  // Adjoint of index_select: grad_in (outer, in_dim, inner) += scatter of grad_out.
  virtual void index_add(DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                         std::int64_t n_idx, const std::int64_t* idx, const void* grad_out,
                         void* grad_in) = 0;

  // ---- reductions over the middle axis of (outer, reduce, inner) ----
  // Sum writes out (outer, inner). Max also writes argmax (int64) when `argmax` is non-null.
  virtual void reduce(ReduceOp op, DType t, std::int64_t outer, std::int64_t reduce,
                      std::int64_t inner, const void* in, void* out, std::int64_t* argmax) = 0;

  // ---- linear algebra ----
  // Row-major C(m,n) = alpha * op(A) op(B) + beta * C, batched with element strides
  // (stride 0 broadcasts an operand across the batch).
  virtual void gemm(DType t, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
                    std::int64_t k, double alpha, const void* a, std::int64_t lda,
                    std::int64_t stride_a, const void* b, std::int64_t ldb,
                    std::int64_t stride_b, double beta, void* c, std::int64_t ldc,
                    std::int64_t stride_c, std::int64_t batch) = 0;

  // ---- softmax family over the middle axis of (outer, dim, inner) ----
  virtual void softmax(DType t, bool log, std::int64_t outer, std::int64_t dim,
                       std::int64_t inner, const void* x, void* y) = 0;
  // dx from y = softmax (or log_softmax) output and dy.
  virtual void softmax_backward(DType t, bool log, std::int64_t outer, std::int64_t dim,
                                std::int64_t inner, const void* y, const void* dy,
                                void* dx) = 0;
  // Fused cross-entropy over logits (n, c) and int64 labels with label smoothing eps:
  // loss_i = -(1-eps) log p[i, y_i] - eps/c * sum_j log p[i, j]. Writes per-sample loss (n)
  // and the probabilities (n, c) that backward needs. Labels outside [0, c) are the
  // caller's responsibility (core/ checks them before calling).
  virtual void cross_entropy(DType t, std::int64_t n, std::int64_t c, double smoothing,
                             const void* logits, const std::int64_t* labels, void* loss,
                             void* probs) = 0;
  // grad_logits = scale * (probs - target_distribution)
  virtual void cross_entropy_backward(DType t, std::int64_t n, std::int64_t c, double smoothing,
                                      double scale, const void* probs,
                                      const std::int64_t* labels, void* grad_logits) = 0;

  // ---- optimizer updates (in place over one parameter of n elements) ----
  virtual void sgd_step(DType t, std::int64_t n, const SgdParams& p, void* param,
                        const void* grad, void* momentum_buffer) = 0;
  virtual void adamw_step(DType t, std::int64_t n, const AdamWParams& p, void* param,
                          const void* grad, void* exp_avg, void* exp_avg_sq) = 0;
};

// The one dispatch point: the backend that runs on `device`. Throws Unsupported when the
// build has no such backend (a CPU-only build asked for CUDA).
Backend& backend(DeviceType device);

// True when this build has the CUDA backend and a GPU is present.
bool cuda_available();

}  // namespace shrink::kernels
