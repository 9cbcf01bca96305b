// The CPU backend: the project's own AVX2/FMA + OpenMP kernels. Each family lives in its
// own file in kernels/cpu/ (memory, elementwise, random, layout, gather, reduce, softmax,
// optim, gemm, sparse); this class only routes the interface to them. Its kernel
// declarations are generated from kernels/kernel_list.h.
#pragma once
#include "kernels/backend.h"
#include "kernels/dtype_dispatch.h"

namespace shrink::kernels::cpu {

// Below this many elements a loop runs on one thread: forking costs more than it saves.
constexpr std::int64_t kParallelGrain = 1 << 15;

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr, std::size_t bytes) override;
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override;
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override;
  void copy(void* dst, const void* src, std::size_t bytes) override;

#define SHRINK_KERNEL(kernel, params, args) void kernel params override;
#include "kernels/kernel_list.h"
};

// The dtype dispatch lives in kernels/dtype_dispatch.h (shared with CUDA and core/); these
// names keep kernels::cpu::dispatch_* spelled as before.
using kernels::dispatch_all;
using kernels::dispatch_floating;

}  // namespace shrink::kernels::cpu
