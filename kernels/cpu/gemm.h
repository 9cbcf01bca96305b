// The project's own CPU GEMM (row-major): C = alpha * op(A) * op(B) + beta * C.
// op(A) is (m, k), op(B) is (k, n). With trans_a, A is stored (k, m); with trans_b, B is
// stored (n, k). Leading dimensions are in elements. beta == 0 overwrites C (NaNs in C
// do not propagate), as BLAS does.
#pragma once
#include <cstdint>

namespace shrink::kernels::cpu {

// Packed, cache-blocked, AVX2/FMA register-blocked micro-kernel, OpenMP over both cores.
void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
           float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
           float beta, float* c, std::int64_t ldc);

// Double precision: used by gradient checks, so clarity over speed (blocked loops).
void dgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
           double alpha, const double* a, std::int64_t lda, const double* b, std::int64_t ldb,
           double beta, double* c, std::int64_t ldc);

// The two under one name, for kernels templated on the element type (the pointers pick).
inline void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                 const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                 std::int64_t ldc) {
  sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                 const double* a, std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c,
                 std::int64_t ldc) {
  dgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace shrink::kernels::cpu
