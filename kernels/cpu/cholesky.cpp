// Cholesky factorisation and triangular solves, blocked so that the O(n^3) work runs in the
// project's packed GEMM (kernels/cpu/gemm.h). Row-major throughout.
//
// cholesky: right-looking by column blocks of kBlock (LAPACK's potrf order):
//   1. factor the diagonal block L11 L11^T = A11 (unblocked, accumulated in double);
//   2. panel: L21 = A21 L11^-T (forward substitution, one row per task);
//   3. trailing update: A22 -= L21 L21^T, lower part only, one GEMM per column slab.
// triangular_solve: by row blocks; each block subtracts the solved rows' contribution with
// one GEMM and then substitutes within the block (many right-hand sides), or one vector per
// right-hand side with each row of L read once (few).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/gemm.h"

namespace shrink::kernels::cpu {

namespace {

constexpr std::int64_t kBlock = 128;  // columns per diagonal block: the GEMMs' inner size
constexpr std::int64_t kSlab = 512;   // columns per trailing-update GEMM (lower part only)

void gemm_t(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const float* a,
            std::int64_t lda, const float* b, std::int64_t ldb, double beta, float* c, std::int64_t ldc) {
  sgemm(ta, tb, m, n, k, static_cast<float>(alpha), a, lda, b, ldb, static_cast<float>(beta), c, ldc);
}
void gemm_t(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
            std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
  dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Factors the (size x size) diagonal block at d (row stride ld) in place, left-looking, with
// double accumulation. Returns the local index of the first non-positive (or NaN) pivot, or
// `size` when the block is positive definite.
template <class T>
std::int64_t factor_diagonal(T* d, std::int64_t ld, std::int64_t size) {
  for (std::int64_t j = 0; j < size; ++j) {
    T* row_j = d + j * ld;
    double pivot = row_j[j];
    for (std::int64_t p = 0; p < j; ++p) pivot -= static_cast<double>(row_j[p]) * row_j[p];
    if (!(pivot > 0)) return j;
    const double root = std::sqrt(pivot);
    row_j[j] = static_cast<T>(root);
    for (std::int64_t i = j + 1; i < size; ++i) {
      T* row_i = d + i * ld;
      double v = row_i[j];
      for (std::int64_t p = 0; p < j; ++p) v -= static_cast<double>(row_i[p]) * row_j[p];
      row_i[j] = static_cast<T>(v / root);
    }
  }
  return size;
}

// Rows [first, n) of the panel at columns [j0, j0 + size): x L11^T = a, row by row.
template <class T>
void solve_panel(T* l, std::int64_t n, std::int64_t j0, std::int64_t size, std::int64_t first) {
  const T* diag = l + j0 * n + j0;
#pragma omp parallel for schedule(static) if ((n - first) * size * size > kParallelGrain)
  for (std::int64_t i = first; i < n; ++i) {
    T* x = l + i * n + j0;
    for (std::int64_t j = 0; j < size; ++j) {
      const T* lj = diag + j * n;
      T dot = 0;
#pragma omp simd reduction(+ : dot)
      for (std::int64_t p = 0; p < j; ++p) dot += x[p] * lj[p];
      x[j] = (x[j] - dot) / lj[j];
    }
  }
}

template <class T>
std::int64_t cholesky_impl(std::int64_t n, const T* a, T* l) {
  std::memcpy(l, a, static_cast<std::size_t>(n * n) * sizeof(T));
  for (std::int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const std::int64_t size = std::min(kBlock, n - j0);
    const std::int64_t bad = factor_diagonal(l + j0 * n + j0, n, size);
    if (bad < size) return j0 + bad;
    const std::int64_t rest = j0 + size;
    if (rest == n) break;
    solve_panel(l, n, j0, size, rest);
    // A22 -= L21 L21^T, slab by slab of columns, rows from the slab's first down (the lower
    // part and the slab's diagonal square, whose upper half is never read afterwards).
    for (std::int64_t c0 = rest; c0 < n; c0 += kSlab) {
      const std::int64_t width = std::min(kSlab, n - c0);
      gemm_t(false, true, n - c0, width, size, -1.0, l + c0 * n + j0, n, l + c0 * n + j0, n, 1.0,
             l + c0 * n + c0, n);
    }
  }
  for (std::int64_t i = 0; i < n; ++i) std::fill(l + i * n + i + 1, l + (i + 1) * n, T(0));
  return n;
}

// Few right-hand sides (the refit's case: one per consumer output): a GEMM per block would
// be as thin as r, so solve the transposed system instead, each right-hand side a contiguous
// vector, and read each row of L once for all of them (L^-1 by dot products, L^-T by axpys).
template <class T>
void triangular_solve_few(std::int64_t n, std::int64_t r, const T* l, bool transpose, T* x) {
  std::vector<T> xt(static_cast<std::size_t>(r * n));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < r; ++c) xt[c * n + i] = x[i * r + c];
  if (!transpose) {
    for (std::int64_t i = 0; i < n; ++i) {
      const T* li = l + i * n;
      for (std::int64_t c = 0; c < r; ++c) {
        T* v = xt.data() + c * n;
        T dot = 0;
#pragma omp simd reduction(+ : dot)
        for (std::int64_t p = 0; p < i; ++p) dot += li[p] * v[p];
        v[i] = (v[i] - dot) / li[i];
      }
    }
  } else {
    for (std::int64_t i = n - 1; i >= 0; --i) {
      const T* li = l + i * n;
      for (std::int64_t c = 0; c < r; ++c) {
        T* v = xt.data() + c * n;
        const T xi = v[i] / li[i];
        v[i] = xi;
#pragma omp simd
        for (std::int64_t p = 0; p < i; ++p) v[p] -= li[p] * xi;
      }
    }
  }
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < r; ++c) x[i * r + c] = xt[c * n + i];
}

constexpr std::int64_t kFewRightHandSides = 32;

// One step of substitution within a diagonal block: row xi -= f * row xp (r right-hand sides).
template <class T>
void subtract_row(T* xi, T f, const T* xp, std::int64_t r) {
#pragma omp simd
  for (std::int64_t c = 0; c < r; ++c) xi[c] -= f * xp[c];
}

// Divides a solved row by the diagonal entry of L.
template <class T>
void divide_row(T* xi, T diagonal, std::int64_t r) {
  const T inv = T(1) / diagonal;
  for (std::int64_t c = 0; c < r; ++c) xi[c] *= inv;
}

// x (n, r) holds b on entry and L^-1 b (or L^-T b) on return.
template <class T>
void triangular_solve_impl(std::int64_t n, std::int64_t r, const T* l, bool transpose, T* x) {
  if (!transpose) {
    for (std::int64_t j0 = 0; j0 < n; j0 += kBlock) {
      const std::int64_t j1 = std::min(n, j0 + kBlock);
      if (j0 > 0) gemm_t(false, false, j1 - j0, r, j0, -1.0, l + j0 * n, n, x, r, 1.0, x + j0 * r, r);
      for (std::int64_t i = j0; i < j1; ++i) {
        for (std::int64_t p = j0; p < i; ++p) subtract_row(x + i * r, l[i * n + p], x + p * r, r);
        divide_row(x + i * r, l[i * n + i], r);
      }
    }
    return;
  }
  const std::int64_t last = (n - 1) / kBlock * kBlock;
  for (std::int64_t j0 = last; j0 >= 0; j0 -= kBlock) {
    const std::int64_t j1 = std::min(n, j0 + kBlock);
    // X[j0:j1] -= L[j1:n, j0:j1]^T X[j1:n]
    if (j1 < n) gemm_t(true, false, j1 - j0, r, n - j1, -1.0, l + j1 * n + j0, n, x + j1 * r, r, 1.0, x + j0 * r, r);
    for (std::int64_t i = j1 - 1; i >= j0; --i) {
      for (std::int64_t p = i + 1; p < j1; ++p) subtract_row(x + i * r, l[p * n + i], x + p * r, r);
      divide_row(x + i * r, l[i * n + i], r);
    }
  }
}

}  // namespace

void CpuBackend::cholesky(DType t, std::int64_t n, const void* a, void* l, std::int64_t* info) {
  if (n <= 0) {
    *info = 0;
    return;
  }
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    *info = cholesky_impl(n, static_cast<const T*>(a), static_cast<T*>(l));
  }, "cholesky");
}

void CpuBackend::triangular_solve(DType t, std::int64_t n, std::int64_t nrhs, const void* l, bool transpose,
                                  const void* b, void* x) {
  if (n <= 0 || nrhs <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    if (x != b) std::memcpy(x, b, static_cast<std::size_t>(n * nrhs) * sizeof(T));
    if (nrhs <= kFewRightHandSides)
      triangular_solve_few(n, nrhs, static_cast<const T*>(l), transpose, static_cast<T*>(x));
    else
      triangular_solve_impl(n, nrhs, static_cast<const T*>(l), transpose, static_cast<T*>(x));
  }, "triangular_solve");
}

}  // namespace shrink::kernels::cpu
