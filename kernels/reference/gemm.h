// Reference GEMM: the triple loop, accumulated in double. Row-major, with leading dimensions
// and batch strides as kernels::Backend::gemm takes them.
#pragma once
#include <cmath>
#include <cstdint>

namespace shrink::kernels::reference {

// For each batch p:  C_p (m, n) = alpha * op(A_p) op(B_p) + beta * C_p, where
//   A_p = a + p * stride_a: (m, k) with row stride lda, or (k, m) when trans_a
//   B_p = b + p * stride_b: (k, n) with row stride ldb, or (n, k) when trans_b
//   C_p = c + p * stride_c: (m, n) with row stride ldc
// beta == 0 does not read C (a NaN there is overwritten), as BLAS.
// `abs_scale`, when given (same layout as C), receives |alpha| sum_k |a_ik b_kj| + |beta c_ij|:
// the size of the terms, for a rounding-error bound.
template <class T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
          double alpha, const T* a, std::int64_t lda, std::int64_t stride_a, const T* b,
          std::int64_t ldb, std::int64_t stride_b, double beta, double* c, std::int64_t ldc,
          std::int64_t stride_c, std::int64_t batch, double* abs_scale = nullptr) {
  for (std::int64_t p = 0; p < batch; ++p) {
    const T* ap = a + p * stride_a;
    const T* bp = b + p * stride_b;
    double* cp = c + p * stride_c;
    double* sp = abs_scale ? abs_scale + p * stride_c : nullptr;
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double dot = 0, size = 0;
        for (std::int64_t q = 0; q < k; ++q) {
          const double x = trans_a ? ap[q * lda + i] : ap[i * lda + q];
          const double y = trans_b ? bp[j * ldb + q] : bp[q * ldb + j];
          dot += x * y;
          size += std::fabs(x * y);
        }
        const double c_term = beta == 0 ? 0.0 : beta * cp[i * ldc + j];
        cp[i * ldc + j] = alpha * dot + c_term;
        if (sp) sp[i * ldc + j] = std::fabs(alpha) * size + std::fabs(c_term);
      }
  }
}

}  // namespace shrink::kernels::reference
