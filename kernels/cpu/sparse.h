// CSR kernels for the sparse linear layer y = x W^T + b, with W (rows, cols) stored as
// compressed sparse rows: row_ptr (rows + 1), col_idx (nnz), values (nnz); row r owns the
// entries e in [row_ptr[r], row_ptr[r+1]). Pure functions on host pointers, as gemm.h.
//
// Speed: the dense batch is the vectorised inner dimension. Each thread transposes a tile
// of kTile batch rows of x (or dy) into a small (cols, kTile) buffer, then for every
// nonzero does one kTile-wide FMA against a row of that buffer (AVX2 under -mavx2 -mfma);
// tiles run in parallel over OpenMP threads. The callers validate the CSR structure
// (monotone row_ptr, row_ptr[rows] == nnz, col_idx in [0, cols)).
#pragma once
#include <cstdint>

namespace shrink::kernels::cpu {

// The shared inner kernel of the CSR products (here and kernels/cpu/sparse_conv.cpp): a tile
// of kSparseTile lanes, packed as rows of xt (rows, kSparseTile);
// acc (kSparseTile) = sum over entries e in [begin, end) of values[e] * xt[col_idx[e], :].
// Every lane of the rows read must hold a number (pad a partial tile with zeros).
inline constexpr std::int64_t kSparseTile = 32;
void row_times_tile(std::int64_t begin, std::int64_t end, const std::int64_t* col_idx, const float* values,
                    const float* xt, float* acc);
void row_times_tile(std::int64_t begin, std::int64_t end, const std::int64_t* col_idx, const double* values,
                    const double* xt, double* acc);

// y (batch, rows) = x (batch, cols) W^T (+ bias (rows) when non-null).
void csr_linear_forward(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                        const std::int64_t* row_ptr, const std::int64_t* col_idx,
                        const float* values, const float* x, const float* bias, float* y);
void csr_linear_forward(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                        const std::int64_t* row_ptr, const std::int64_t* col_idx,
                        const double* values, const double* x, const double* bias, double* y);

// dx (batch, cols) = dy (batch, rows) W: the transposed SpMM (overwrites dx).
void csr_linear_backward_input(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                               const std::int64_t* row_ptr, const std::int64_t* col_idx,
                               const float* values, const float* dy, float* dx);
void csr_linear_backward_input(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                               const std::int64_t* row_ptr, const std::int64_t* col_idx,
                               const double* values, const double* dy, double* dx);

// dvalues[e] = sum_n dy[n, row(e)] x[n, col(e)]: the sampled dense-dense product (SDDMM),
// i.e. the dense gradient dy^T x read only at the stored entries (overwrites dvalues).
void csr_sampled_gradient(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                          const std::int64_t* row_ptr, const std::int64_t* col_idx,
                          const float* dy, const float* x, float* dvalues);
void csr_sampled_gradient(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                          const std::int64_t* row_ptr, const std::int64_t* col_idx,
                          const double* dy, const double* x, double* dvalues);

}  // namespace shrink::kernels::cpu
