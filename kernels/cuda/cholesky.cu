// Cholesky factorisation (cuSOLVER potrf) and triangular solves (cuBLAS trsm), row-major
// as the CPU twin (kernels/cpu/cholesky.cpp).
//
// A row-major (n, n) matrix read column-major is its transpose. So our lower-triangular L is
// column-major upper U = L^T: potrf with CUBLAS_FILL_MODE_UPPER on the (symmetric) matrix
// yields A = U^T U = L L^T and writes exactly the row-major lower triangle. A row-major
// (n, r) right-hand side is a column-major (r, n) matrix B^T, so L X = B becomes
// X^T U = B^T and L^T X = B becomes X^T U^T = B^T: trsm from the right.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <algorithm>
#include <climits>
#include <mutex>
#include <string>
#include <type_traits>

#include "kernels/cuda/launch.cuh"

namespace shrink::kernels::cuda {

namespace {

void check_cusolver(cusolverStatus_t status, const char* call) {
  if (status != CUSOLVER_STATUS_SUCCESS)
    throw Error(std::string("cuSOLVER error in ") + call + " (status " +
                std::to_string(static_cast<int>(status)) + ")");
}
void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuBLAS error in ") + call + ": " + cublasGetStatusString(status));
}
#define SHRINK_CUSOLVER_CHECK(call) check_cusolver((call), #call)
#define SHRINK_CUBLAS_CHECK(call) check_cublas((call), #call)

// One cuSOLVER and one cuBLAS handle for these kernels, never destroyed (at process exit the
// CUDA context may already be gone), bound to the backend's stream before each use; calls
// are serialised because a handle's stream is shared state.
struct SolverContext {
  std::mutex mutex;
  cusolverDnHandle_t solver = nullptr;
  cublasHandle_t blas = nullptr;
};

SolverContext& context() {
  static SolverContext* ctx = [] {
    auto* c = new SolverContext;
    SHRINK_CUSOLVER_CHECK(cusolverDnCreate(&c->solver));
    SHRINK_CUBLAS_CHECK(cublasCreate(&c->blas));
    return c;
  }();
  SHRINK_CUSOLVER_CHECK(cusolverDnSetStream(ctx->solver, stream()));
  SHRINK_CUBLAS_CHECK(cublasSetStream(ctx->blas, stream()));
  return *ctx;
}

int to_int(std::int64_t v, const char* kernel, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw Error(std::string("cuda ") + kernel + ": " + what + " = " + std::to_string(v) +
                " is outside cuSOLVER's 32-bit range");
  return static_cast<int>(v);
}

// Zeros the row-major upper triangle (potrf leaves the input there).
template <class T>
__global__ void zero_upper_kernel(std::int64_t n, T* l) {
  for (std::int64_t e = grid_start(); e < n * n; e += grid_step())
    if (e % n > e / n) l[e] = T(0);
}

// potrf's info (k > 0: the leading minor of order k is not positive definite) as the
// kernel's contract states it: the first bad pivot's index, or n. A NaN pivot, which potrf
// may pass through, is caught on the factor's diagonal.
template <class T>
__global__ void pivot_info_kernel(std::int64_t n, const int* dev_info, const T* l, std::int64_t* info) {
  std::int64_t at = *dev_info > 0 ? *dev_info - 1 : n;
  for (std::int64_t j = 0; j < at; ++j)
    if (!(l[j * n + j] > T(0))) {
      at = j;
      break;
    }
  *info = at;
}

template <class T>
void potrf(SolverContext& c, CudaBackend& be, int n, T* l, std::int64_t* info) {
  int lwork = 0;
  if constexpr (std::is_same_v<T, float>)
    SHRINK_CUSOLVER_CHECK(cusolverDnSpotrf_bufferSize(c.solver, CUBLAS_FILL_MODE_UPPER, n, l, n, &lwork));
  else
    SHRINK_CUSOLVER_CHECK(cusolverDnDpotrf_bufferSize(c.solver, CUBLAS_FILL_MODE_UPPER, n, l, n, &lwork));
  const std::size_t work_bytes = static_cast<std::size_t>(std::max(lwork, 1)) * sizeof(T);
  void* work = be.allocate(work_bytes);
  void* dev_info = be.allocate(sizeof(int));
  if constexpr (std::is_same_v<T, float>)
    SHRINK_CUSOLVER_CHECK(cusolverDnSpotrf(c.solver, CUBLAS_FILL_MODE_UPPER, n, l, n,
                                           static_cast<T*>(work), lwork, static_cast<int*>(dev_info)));
  else
    SHRINK_CUSOLVER_CHECK(cusolverDnDpotrf(c.solver, CUBLAS_FILL_MODE_UPPER, n, l, n,
                                           static_cast<T*>(work), lwork, static_cast<int*>(dev_info)));
  pivot_info_kernel<T><<<1, 1, 0, stream()>>>(n, static_cast<const int*>(dev_info), l, info);
  check_launch("cholesky (pivot info)");
  zero_upper_kernel<T><<<blocks_for(static_cast<std::int64_t>(n) * n), kThreadsPerBlock, 0, stream()>>>(n, l);
  check_launch("cholesky (zero upper)");
  // The caching allocator orders reuse on the one stream, so freeing after enqueueing is safe.
  be.deallocate(dev_info, sizeof(int));
  be.deallocate(work, work_bytes);
}

__global__ void set_info_kernel(std::int64_t* info, std::int64_t value) { *info = value; }

}  // namespace

void CudaBackend::cholesky(DType t, std::int64_t n, const void* a, void* l, std::int64_t* info) {
  if (n <= 0) {
    set_info_kernel<<<1, 1, 0, stream()>>>(info, 0);
    check_launch("cholesky");
    return;
  }
  const int ni = to_int(n, "cholesky", "n");
  SHRINK_CUDA_CHECK(cudaMemcpyAsync(l, a, static_cast<std::size_t>(n * n) * dtype_size(t),
                                    cudaMemcpyDeviceToDevice, stream()));
  SolverContext& ctx = context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    potrf<T>(ctx, *this, ni, static_cast<T*>(l), info);
  }, "cholesky");
}

void CudaBackend::triangular_solve(DType t, std::int64_t n, std::int64_t nrhs, const void* l, bool transpose,
                                   const void* b, void* x) {
  if (n <= 0 || nrhs <= 0) return;
  const int ni = to_int(n, "triangular_solve", "n"), ri = to_int(nrhs, "triangular_solve", "nrhs");
  if (x != b)
    SHRINK_CUDA_CHECK(cudaMemcpyAsync(x, b, static_cast<std::size_t>(n * nrhs) * dtype_size(t),
                                      cudaMemcpyDeviceToDevice, stream()));
  SolverContext& ctx = context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  const cublasOperation_t op = transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T one = 1;
    if constexpr (std::is_same_v<T, float>)
      SHRINK_CUBLAS_CHECK(cublasStrsm(ctx.blas, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_UPPER, op, CUBLAS_DIAG_NON_UNIT,
                                      ri, ni, &one, static_cast<const T*>(l), ni, static_cast<T*>(x), ri));
    else
      SHRINK_CUBLAS_CHECK(cublasDtrsm(ctx.blas, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_UPPER, op, CUBLAS_DIAG_NON_UNIT,
                                      ri, ni, &one, static_cast<const T*>(l), ni, static_cast<T*>(x), ri));
  }, "triangular_solve");
}

}  // namespace shrink::kernels::cuda
