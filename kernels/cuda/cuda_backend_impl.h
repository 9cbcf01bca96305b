// Private to kernels/cuda: the CUDA backend class, whose methods are defined one kernel
// family per file (memory.cu, elementwise.cu, random.cu, layout.cu, reduce.cu, softmax.cu,
// optim.cu, gemm.cu), mirroring kernels/cpu/. Include only from .cu files.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "kernels/backend.h"

namespace shrink::kernels::cuda {

// Turns a failed CUDA runtime call into a shrink::Error naming the call.
void check(cudaError_t status, const char* call);
#define SHRINK_CUDA_CHECK(call) ::shrink::kernels::cuda::check((call), #call)

// The one stream every kernel of the backend is launched on (device 0).
cudaStream_t stream();

// Launch geometry for an elementwise pass over n elements.
constexpr int kThreadsPerBlock = 256;
inline unsigned blocks_for(std::int64_t n, int per_thread = 1) {
  const std::int64_t threads = (n + per_thread - 1) / per_thread;
  const std::int64_t blocks = (threads + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 32 ? 65535 * 32 : blocks));
}

class CudaBackend final : public Backend {
 public:
  const char* name() const override { return "cuda"; }
  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr, std::size_t bytes) override;
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override;
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override;
  void copy(void* dst, const void* src, std::size_t bytes) override;
  void synchronize() override;

  void fill(DType t, std::int64_t n, double value, void* out) override;
  void arange(DType t, std::int64_t n, void* out) override;
  void cast(DType from, DType to, std::int64_t n, const void* in, void* out) override;
  void binary(BinaryOp op, DType t, const BroadcastShape& s, const void* a, const void* b,
              void* out) override;
  void unary(UnaryOp op, DType t, std::int64_t n, double alpha, const void* x, void* y) override;
  void unary_backward(UnaryOp op, DType t, std::int64_t n, double alpha, const void* x,
                      const void* y, const void* dy, void* dx) override;
  void dropout(DType t, std::int64_t n, double p, std::uint64_t seed, std::uint64_t offset,
               const void* x, void* y, void* mask) override;
  void random_uniform(DType t, std::int64_t n, double lo, double hi, std::uint64_t seed,
                      std::uint64_t offset, void* out) override;
  void random_normal(DType t, std::int64_t n, double mean, double stddev, std::uint64_t seed,
                     std::uint64_t offset, void* out) override;

  void strided_copy(DType t, int ndim, const std::int64_t* shape, const std::int64_t* in_strides,
                    const void* in, void* out) override;
  void index_select(DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                    const void* in, std::int64_t n_idx, const std::int64_t* idx,
                    void* out) override;
  void index_add(DType t, std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                 std::int64_t n_idx, const std::int64_t* idx, const void* grad_out,
                 void* grad_in) override;

  void reduce(ReduceOp op, DType t, std::int64_t outer, std::int64_t reduce, std::int64_t inner,
              const void* in, void* out, std::int64_t* argmax) override;

  void gemm(DType t, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
            double alpha, const void* a, std::int64_t lda, std::int64_t stride_a, const void* b,
            std::int64_t ldb, std::int64_t stride_b, double beta, void* c, std::int64_t ldc,
            std::int64_t stride_c, std::int64_t batch) override;

  void softmax(DType t, bool log, std::int64_t outer, std::int64_t dim, std::int64_t inner,
               const void* x, void* y) override;
  void softmax_backward(DType t, bool log, std::int64_t outer, std::int64_t dim,
                        std::int64_t inner, const void* y, const void* dy, void* dx) override;
  void cross_entropy(DType t, std::int64_t n, std::int64_t c, double smoothing,
                     const void* logits, const std::int64_t* labels, void* loss,
                     void* probs) override;
  void cross_entropy_backward(DType t, std::int64_t n, std::int64_t c, double smoothing,
                              double scale, const void* probs, const std::int64_t* labels,
                              void* grad_logits) override;

  void sgd_step(DType t, std::int64_t n, const SgdParams& p, void* param, const void* grad,
                void* momentum_buffer) override;
  void adamw_step(DType t, std::int64_t n, const AdamWParams& p, void* param, const void* grad,
                  void* exp_avg, void* exp_avg_sq) override;
};

}  // namespace shrink::kernels::cuda
