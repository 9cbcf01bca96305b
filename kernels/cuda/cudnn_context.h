// Private to kernels/cuda (conv.cu, conv_plan.cu): the backend's cuDNN handle and status check.
//
// cuDNN 9 marks the descriptor-based convolution API (cudnnConvolutionForward and friends)
// as legacy in favour of its graph API; it remains supported, is what PyTorch's v7 path
// calls, and covers every case here (groups, dilation, float64).
#pragma once
#include <cudnn.h>

#include <mutex>
#include <string>

namespace shrink::kernels::cuda {

// Turns a failed cuDNN call into a shrink::Error naming the call and `what` (the op and
// shape it was working on).
void check_cudnn(cudnnStatus_t status, const char* call, const std::string& what);
#define SHRINK_CUDNN_CHECK(call, what) ::shrink::kernels::cuda::check_cudnn((call), #call, (what))

// The one cuDNN handle of the backend (device 0), created on first use and bound to the
// backend's stream, so cuDNN's kernels are ordered with every other kernel and with the
// caching allocator's stream-ordered frees. Never destroyed: at process exit the CUDA
// context may already be gone. A handle is not thread-safe, so callers hold `mutex` from
// binding to the last call that uses the handle.
struct CudnnContext {
  std::mutex mutex;
  cudnnHandle_t handle = nullptr;
};
// Returns the context with its handle bound to stream() (the caller then locks `mutex`).
CudnnContext& cudnn_context();

}  // namespace shrink::kernels::cuda
