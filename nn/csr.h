// Helpers of the layers that store a weight as compressed sparse rows (nn::SparseLinear,
// nn::SparseConv2d): the CSR invariants their forward relies on, and host conversions.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.h"

namespace shrink::nn::csr {

Tensor int64_tensor(const std::vector<std::int64_t>& v);
// values (nnz) as `dtype`, built in double on the host.
Tensor float_tensor(const std::vector<double>& v, DType dtype);
std::vector<double> host_doubles(const Tensor& t);

// row_ptr (out + 1, int64) runs from 0 to nnz without decreasing, col_idx (nnz, int64) lies
// in [0, columns) and increases within each row, values (nnz) match, bias (out) or undefined
// of values' dtype. Each message starts with `who`. row_ptr is checked whole before any
// col_idx entry is read, so a corrupt row_ptr never indexes past col_idx.
void check_csr(const char* who, std::int64_t columns, const Tensor& row_ptr, const Tensor& col_idx,
               const Tensor& values, const Tensor& bias);

// A CSR on the host.
struct Entries {
  std::vector<std::int64_t> row_ptr{0}, col_idx;
  std::vector<double> values;
};
// The stored entries e for which keep(e) holds, every row kept (perhaps empty): how a further
// pruning round shrinks a sparse layer.
Entries kept_entries(const Tensor& row_ptr, const Tensor& col_idx, const Tensor& values,
                     const std::function<bool(std::int64_t entry)>& keep);

// Row of each stored entry (nnz), expanded from row_ptr.
std::vector<std::int64_t> entry_rows(const Tensor& row_ptr);

}  // namespace shrink::nn::csr
