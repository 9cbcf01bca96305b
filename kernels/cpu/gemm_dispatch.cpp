// Routes the backend's batched GEMM to the single-matrix kernels in gemm.cpp. The GEMM
// itself threads internally, so batches run one after another.
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/gemm.h"

namespace shrink::kernels::cpu {

void CpuBackend::gemm(DType t, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
                      std::int64_t k, double alpha, const void* a, std::int64_t lda,
                      std::int64_t stride_a, const void* b, std::int64_t ldb, std::int64_t stride_b,
                      double beta, void* c, std::int64_t ldc, std::int64_t stride_c,
                      std::int64_t batch) {
  for (std::int64_t i = 0; i < batch; ++i) {
    if (t == DType::Float32) {
      sgemm(trans_a, trans_b, m, n, k, static_cast<float>(alpha),
            static_cast<const float*>(a) + i * stride_a, lda,
            static_cast<const float*>(b) + i * stride_b, ldb, static_cast<float>(beta),
            static_cast<float*>(c) + i * stride_c, ldc);
    } else if (t == DType::Float64) {
      dgemm(trans_a, trans_b, m, n, k, alpha, static_cast<const double*>(a) + i * stride_a, lda,
            static_cast<const double*>(b) + i * stride_b, ldb, beta,
            static_cast<double*>(c) + i * stride_c, ldc);
    } else {
      throw Unsupported("gemm: int64 matrices are not supported");
    }
  }
}

}  // namespace shrink::kernels::cpu
