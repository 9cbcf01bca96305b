// The CSR kernels of kernels/kernel_list.h on the CPU backend: dtype routing to the typed
// kernels of kernels/cpu/sparse.h (which the CSR benchmarks and tests also call directly).
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/sparse.h"

namespace shrink::kernels::cpu {

void CpuBackend::csr_linear(DType t, std::int64_t batch, std::int64_t rows, std::int64_t cols,
                            const std::int64_t* row_ptr, const std::int64_t* col_idx,
                            const void* values, const void* x, const void* bias, void* y) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    csr_linear_forward(batch, rows, cols, row_ptr, col_idx, static_cast<const T*>(values),
                       static_cast<const T*>(x), static_cast<const T*>(bias), static_cast<T*>(y));
  }, "csr_linear");
}

void CpuBackend::csr_linear_backward_input(DType t, std::int64_t batch, std::int64_t rows,
                                           std::int64_t cols, const std::int64_t* row_ptr,
                                           const std::int64_t* col_idx, const void* values,
                                           const void* dy, void* dx) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    cpu::csr_linear_backward_input(batch, rows, cols, row_ptr, col_idx,
                                   static_cast<const T*>(values), static_cast<const T*>(dy),
                                   static_cast<T*>(dx));
  }, "csr_linear_backward_input");
}

void CpuBackend::csr_sampled_gradient(DType t, std::int64_t batch, std::int64_t rows,
                                      std::int64_t cols, const std::int64_t* row_ptr,
                                      const std::int64_t* col_idx, const void* dy, const void* x,
                                      void* dvalues) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    cpu::csr_sampled_gradient(batch, rows, cols, row_ptr, col_idx, static_cast<const T*>(dy),
                              static_cast<const T*>(x), static_cast<T*>(dvalues));
  }, "csr_sampled_gradient");
}

}  // namespace shrink::kernels::cpu
