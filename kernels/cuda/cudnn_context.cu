// The backend's cuDNN handle and status check (kernels/cuda/cudnn_context.h).
#include <cudnn.h>

#include <string>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/cudnn_context.h"

namespace shrink::kernels::cuda {

void check_cudnn(cudnnStatus_t status, const char* call, const std::string& what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  throw Error(std::string("cuDNN error in ") + call + " (" + what + "): " +
              cudnnGetErrorString(status) + " (status " + std::to_string(static_cast<int>(status)) +
              ")");
}

CudnnContext& cudnn_context() {
  // stream() never changes (one stream for the process), so binding once at creation keeps
  // the handle on it.
  static CudnnContext* ctx = [] {
    auto* c = new CudnnContext;
    SHRINK_CUDNN_CHECK(cudnnCreate(&c->handle), "creating the backend's cuDNN handle");
    SHRINK_CUDNN_CHECK(cudnnSetStream(c->handle, stream()),
                       "binding the cuDNN handle to the stream");
    return c;
  }();
  return *ctx;
}

}  // namespace shrink::kernels::cuda
