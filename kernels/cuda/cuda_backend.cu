// CUDA backend: the process-wide instance, the error check and the one stream. The kernels
// live one family per file (memory.cu, elementwise.cu, random.cu, layout.cu, reduce.cu,
// softmax.cu, optim.cu, gemm.cu), like kernels/cpu/.
#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_backend_impl.h"

namespace shrink::kernels::cuda {

void check(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // reset the last-error state so later calls start clean
  throw Error(std::string("CUDA error in ") + call + ": " + cudaGetErrorString(status));
}

cudaStream_t stream() {
  // One non-blocking stream: kernels, copies and stream-ordered frees are serialised on it,
  // so a freed block can be handed out again without waiting. Created on first use (not at
  // load time) so a process that never touches the GPU never creates a context. Never
  // destroyed: at exit the driver may already be gone.
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    SHRINK_CUDA_CHECK(cudaSetDevice(0));
    SHRINK_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    return created;
  }();
  return s;
}

Backend& backend() {
  static CudaBackend instance;
  return instance;
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: not an error for the caller
    return 0;
  }
  return count;
}

}  // namespace shrink::kernels::cuda
