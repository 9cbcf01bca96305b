// Row-major batched strided GEMM through cuBLAS.
//
// cuBLAS is column-major. A row-major (r, c) matrix with leading dimension ld is, read
// column-major, its (c, r) transpose with the same ld. So row-major C = op(A) op(B) is
// column-major C^T = op(B)^T op(A)^T: call cuBLAS with the operands swapped (B first),
// m and n swapped, and each operand keeping its own transpose flag and leading dimension.
// A batch stride of 0 broadcasts an operand, which cuBLAS's strided-batched calls allow.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/tf32.h"

namespace shrink::kernels::cuda {

namespace {

void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuBLAS error in ") + call + ": " + cublasGetStatusString(status) +
                " (status " + std::to_string(static_cast<int>(status)) + ")");
}
#define SHRINK_CUBLAS_CHECK(call) check_cublas((call), #call)

// -1: not decided yet (the environment is read on first use), 0: off, 1: on.
std::atomic<int> g_allow_tf32{-1};

bool tf32_from_environment() {
  const char* v = std::getenv("SHRINK_ALLOW_TF32");
  return v != nullptr && (std::strcmp(v, "1") == 0 || std::strcmp(v, "true") == 0 ||
                          std::strcmp(v, "on") == 0);
}

// The backend's one cuBLAS handle. It is never destroyed: at process exit the CUDA context
// may already be gone, and cublasDestroy would then fail. Calls are serialised because a
// handle's stream and math mode are shared state.
struct CublasContext {
  std::mutex mutex;
  cublasHandle_t handle = nullptr;
  cudaStream_t bound_stream = nullptr;
  int math_mode = -1;  // the cublasMath_t last set, -1 before the first call
};

CublasContext& context() {
  static CublasContext* ctx = [] {
    auto* c = new CublasContext;
    SHRINK_CUBLAS_CHECK(cublasCreate(&c->handle));
    SHRINK_CUBLAS_CHECK(cublasSetStream(c->handle, stream()));
    c->bound_stream = stream();
    return c;
  }();
  return *ctx;
}

// Binds the handle to the backend's stream and the current TF32 choice (caller holds mutex).
void prepare(CublasContext& c) {
  if (c.bound_stream != stream()) {
    SHRINK_CUBLAS_CHECK(cublasSetStream(c.handle, stream()));
    c.bound_stream = stream();
  }
  // Without TF32, CUBLAS_DEFAULT_MATH computes float32 GEMMs in full float32 precision.
  const int mode = allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
  if (mode != c.math_mode) {
    SHRINK_CUBLAS_CHECK(cublasSetMathMode(c.handle, static_cast<cublasMath_t>(mode)));
    c.math_mode = mode;
  }
}

int to_int(std::int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw Error(std::string("cuda gemm: ") + what + " = " + std::to_string(v) +
                " is outside cuBLAS's 32-bit range [0, " + std::to_string(INT_MAX) + "]");
  return static_cast<int>(v);
}

// cuBLAS rejects a leading dimension below 1 even where it reads a single row or column
// (the CPU does not care); 1 stands in. Other too-small values are reported by cuBLAS.
int leading(std::int64_t ld, const char* what) {
  return to_int(std::max<std::int64_t>(ld, 1), what);
}

struct Problem {
  cublasOperation_t op_first, op_second;  // cuBLAS's A is our B, its B is our A
  int m, n, k, ld_first, ld_second, ldc, batch;
  long long stride_first, stride_second, stride_c;
};

template <class T>
void run_gemm(CublasContext& c, const Problem& p, T alpha, const T* a, const T* b, T beta,
              T* out) {
  if constexpr (std::is_same_v<T, float>) {
    SHRINK_CUBLAS_CHECK(cublasSgemmStridedBatched(
        c.handle, p.op_first, p.op_second, p.m, p.n, p.k, &alpha, b, p.ld_first, p.stride_first, a,
        p.ld_second, p.stride_second, &beta, out, p.ldc, p.stride_c, p.batch));
  } else {
    SHRINK_CUBLAS_CHECK(cublasDgemmStridedBatched(
        c.handle, p.op_first, p.op_second, p.m, p.n, p.k, &alpha, b, p.ld_first, p.stride_first, a,
        p.ld_second, p.stride_second, &beta, out, p.ldc, p.stride_c, p.batch));
  }
}

// k == 0: C = beta * C (beta == 0 overwrites, as BLAS and the CPU do). Done here because
// a zero-length inner dimension is where BLAS libraries differ most in what they accept.
template <class T>
__global__ void scale_output_kernel(std::int64_t m, std::int64_t n, T beta, T* c, std::int64_t ldc,
                                    std::int64_t stride_c, std::int64_t batch) {
  const std::int64_t total = batch * m * n;
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    const std::int64_t q = e / (m * n), i = e / n % m, j = e % n;
    T& out = c[q * stride_c + i * ldc + j];
    out = beta == T(0) ? T(0) : beta * out;
  }
}

template <class T>
void scale_output(std::int64_t m, std::int64_t n, double beta, void* c, std::int64_t ldc,
                  std::int64_t stride_c, std::int64_t batch) {
  // A shared C (stride 0) is scaled once per batch entry, as the CPU's loop does.
  const std::int64_t calls = stride_c == 0 ? batch : 1, per_call = stride_c == 0 ? 1 : batch;
  for (std::int64_t i = 0; i < calls; ++i) {
    scale_output_kernel<T><<<blocks_for(per_call * m * n), kThreadsPerBlock, 0, stream()>>>(
        m, n, static_cast<T>(beta), static_cast<T*>(c), ldc, stride_c, per_call);
    check_launch("gemm (k = 0: C = beta C)");
  }
}

}  // namespace

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow ? 1 : 0); }

bool allow_tf32() {
  int v = g_allow_tf32.load();
  if (v < 0) {
    int expected = -1;
    g_allow_tf32.compare_exchange_strong(expected, tf32_from_environment() ? 1 : 0);
    v = g_allow_tf32.load();
  }
  return v == 1;
}

void CudaBackend::gemm(DType t, bool trans_a, bool trans_b, std::int64_t m, std::int64_t n,
                       std::int64_t k, double alpha, const void* a, std::int64_t lda,
                       std::int64_t stride_a, const void* b, std::int64_t ldb,
                       std::int64_t stride_b, double beta, void* c, std::int64_t ldc,
                       std::int64_t stride_c, std::int64_t batch) {
  if (t == DType::Int64) throw Unsupported("cuda gemm: int64 matrices are not supported");
  if (m == 0 || n == 0 || batch == 0) return;
  if (k == 0) {
    if (t == DType::Float32) scale_output<float>(m, n, beta, c, ldc, stride_c, batch);
    else scale_output<double>(m, n, beta, c, ldc, stride_c, batch);
    return;
  }
  Problem p;
  p.op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  p.op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  p.m = to_int(n, "n");
  p.n = to_int(m, "m");
  p.k = to_int(k, "k");
  p.ld_first = leading(ldb, "ldb");
  p.ld_second = leading(lda, "lda");
  p.ldc = leading(ldc, "ldc");
  p.stride_first = stride_b;
  p.stride_second = stride_a;
  p.stride_c = stride_c;
  // A shared output (stride_c 0) accumulates batch after batch on the CPU; one cuBLAS
  // batch would race on it, so run the batches in order instead.
  const bool one_by_one = stride_c == 0 && batch > 1;
  p.batch = one_by_one ? 1 : to_int(batch, "batch");

  CublasContext& ctx = context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  prepare(ctx);
  const std::int64_t calls = one_by_one ? batch : 1;
  for (std::int64_t i = 0; i < calls; ++i) {
    if (t == DType::Float32) {
      run_gemm<float>(ctx, p, static_cast<float>(alpha),
                      static_cast<const float*>(a) + i * stride_a,
                      static_cast<const float*>(b) + i * stride_b, static_cast<float>(beta),
                      static_cast<float*>(c));
    } else {
      run_gemm<double>(ctx, p, alpha, static_cast<const double*>(a) + i * stride_a,
                       static_cast<const double*>(b) + i * stride_b, beta, static_cast<double*>(c));
    }
  }
}

}  // namespace shrink::kernels::cuda
