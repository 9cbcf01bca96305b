// Reference CSR sparse linear layer, in double precision: W (rows, cols) stored as row_ptr
// (rows + 1), col_idx (nnz), values (nnz). The tests' oracle for kernels/cpu/sparse.cpp.
#pragma once
#include <cstdint>

namespace shrink::kernels::reference {

// x: (batch, cols), bias: (rows) or null -> y: (batch, rows);  y = x W^T + bias
inline void csr_linear_forward(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                               const std::int64_t* row_ptr, const std::int64_t* col_idx,
                               const double* values, const double* x, const double* bias,
                               double* y) {
  for (std::int64_t s = 0; s < batch; ++s)
    for (std::int64_t r = 0; r < rows; ++r) {
      double acc = bias ? bias[r] : 0.0;
      for (std::int64_t e = row_ptr[r]; e < row_ptr[r + 1]; ++e)
        acc += values[e] * x[s * cols + col_idx[e]];
      y[s * rows + r] = acc;
    }
}

// dy: (batch, rows) -> dx: (batch, cols);  dx = dy W (overwrites dx)
inline void csr_linear_backward_input(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                                      const std::int64_t* row_ptr, const std::int64_t* col_idx,
                                      const double* values, const double* dy, double* dx) {
  for (std::int64_t i = 0; i < batch * cols; ++i) dx[i] = 0;
  for (std::int64_t s = 0; s < batch; ++s)
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t e = row_ptr[r]; e < row_ptr[r + 1]; ++e)
        dx[s * cols + col_idx[e]] += values[e] * dy[s * rows + r];
}

// dy: (batch, rows), x: (batch, cols) -> dvalues: (nnz);
// dvalues[e] = sum_s dy[s, row(e)] x[s, col(e)]: dy^T x sampled at W's pattern.
inline void csr_sampled_gradient(std::int64_t batch, std::int64_t rows, std::int64_t cols,
                                 const std::int64_t* row_ptr, const std::int64_t* col_idx,
                                 const double* dy, const double* x, double* dvalues) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t e = row_ptr[r]; e < row_ptr[r + 1]; ++e) {
      double acc = 0;
      for (std::int64_t s = 0; s < batch; ++s) acc += dy[s * rows + r] * x[s * cols + col_idx[e]];
      dvalues[e] = acc;
    }
}

}  // namespace shrink::kernels::reference
