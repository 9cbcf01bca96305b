// Private to kernels/cuda: the CUDA backend class, whose methods are defined one kernel
// family per file (memory.cu, elementwise.cu, random.cu, layout.cu, reduce.cu, softmax.cu,
// optim.cu, gemm.cu, gather.cu, conv.cu, pool.cu, batch_norm.cu), mirroring kernels/cpu/. Include only from .cu files.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "kernels/backend.h"

namespace shrink::kernels::cuda {

// Turns a failed CUDA runtime call into a shrink::Error naming the call.
void check(cudaError_t status, const char* call);
#define SHRINK_CUDA_CHECK(call) ::shrink::kernels::cuda::check((call), #call)

// The one stream every kernel of the backend is launched on (device 0).
cudaStream_t stream();

// Launch geometry for an elementwise pass over n elements.
constexpr int kThreadsPerBlock = 256;
inline unsigned blocks_for(std::int64_t n, int per_thread = 1) {
  const std::int64_t threads = (n + per_thread - 1) / per_thread;
  const std::int64_t blocks = (threads + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 32 ? 65535 * 32 : blocks));
}

class CudaBackend final : public Backend {
 public:
  const char* name() const override { return "cuda"; }
  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr, std::size_t bytes) override;
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override;
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override;
  void copy(void* dst, const void* src, std::size_t bytes) override;
  void synchronize() override;

  // Declarations generated from kernels/kernel_list.h; the CPU-only entries are skipped, so
  // on CUDA they keep Backend's default, which throws Unsupported naming kernel and device.
#define SHRINK_KERNEL(kernel, params, args) void kernel params override;
#define SHRINK_CPU_ONLY_KERNEL(kernel, params, args)
#include "kernels/kernel_list.h"
};

}  // namespace shrink::kernels::cuda
