// CUDA backend: device memory and copies. Compute kernels for each op family arrive
// in their own .cu files (issue 3); until then those entries report which op lacks a
// CUDA kernel, so a user gets a clear shrink::Error rather than a crash.
#include <cuda_runtime.h>

#include <string>

#include "kernels/cuda/cuda_backend.h"

namespace shrink::kernels::cuda {

namespace {

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess)
    throw Unsupported(std::string("CUDA error in ") + call + ": " + cudaGetErrorString(status));
}

[[noreturn]] void missing(const char* op) {
  throw Unsupported(std::string("cuda: this build has no CUDA kernel for '") + op +
                    "'; run it on the CPU (--device cpu)");
}

class CudaBackend final : public Backend {
 public:
  const char* name() const override { return "cuda"; }
  void* allocate(std::size_t bytes) override {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    check(cudaMalloc(&p, bytes), "cudaMalloc");
    return p;
  }
  void deallocate(void* ptr, std::size_t) override { cudaFree(ptr); }
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override {
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy(host to device)");
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy(device to host)");
  }
  void copy(void* dst, const void* src, std::size_t bytes) override {
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy(device to device)");
  }
  void synchronize() override { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

  void fill(DType, std::int64_t, double, void*) override { missing("fill"); }
  void arange(DType, std::int64_t, void*) override { missing("arange"); }
  void cast(DType, DType, std::int64_t, const void*, void*) override { missing("cast"); }
  void binary(BinaryOp, DType, const BroadcastShape&, const void*, const void*, void*) override {
    missing("binary");
  }
  void unary(UnaryOp, DType, std::int64_t, double, const void*, void*) override { missing("unary"); }
  void unary_backward(UnaryOp, DType, std::int64_t, double, const void*, const void*, const void*,
                      void*) override {
    missing("unary_backward");
  }
  void dropout(DType, std::int64_t, double, std::uint64_t, std::uint64_t, const void*, void*,
               void*) override {
    missing("dropout");
  }
  void random_uniform(DType, std::int64_t, double, double, std::uint64_t, std::uint64_t,
                      void*) override {
    missing("random_uniform");
  }
  void random_normal(DType, std::int64_t, double, double, std::uint64_t, std::uint64_t,
                     void*) override {
    missing("random_normal");
  }
  void strided_copy(DType, int, const std::int64_t*, const std::int64_t*, const void*,
                    void*) override {
    missing("strided_copy");
  }
  void index_select(DType, std::int64_t, std::int64_t, std::int64_t, const void*, std::int64_t,
                    const std::int64_t*, void*) override {
    missing("index_select");
  }
  void index_add(DType, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                 const std::int64_t*, const void*, void*) override {
    missing("index_add");
  }
  void reduce(ReduceOp, DType, std::int64_t, std::int64_t, std::int64_t, const void*, void*,
              std::int64_t*) override {
    missing("reduce");
  }
  void gemm(DType, bool, bool, std::int64_t, std::int64_t, std::int64_t, double, const void*,
            std::int64_t, std::int64_t, const void*, std::int64_t, std::int64_t, double, void*,
            std::int64_t, std::int64_t, std::int64_t) override {
    missing("gemm");
  }
  void softmax(DType, bool, std::int64_t, std::int64_t, std::int64_t, const void*, void*) override {
    missing("softmax");
  }
  void softmax_backward(DType, bool, std::int64_t, std::int64_t, std::int64_t, const void*,
                        const void*, void*) override {
    missing("softmax_backward");
  }
  void cross_entropy(DType, std::int64_t, std::int64_t, double, const void*, const std::int64_t*,
                     void*, void*) override {
    missing("cross_entropy");
  }
  void cross_entropy_backward(DType, std::int64_t, std::int64_t, double, double, const void*,
                              const std::int64_t*, void*) override {
    missing("cross_entropy_backward");
  }
  void sgd_step(DType, std::int64_t, const SgdParams&, void*, const void*, void*) override {
    missing("sgd_step");
  }
  void adamw_step(DType, std::int64_t, const AdamWParams&, void*, const void*, void*,
                  void*) override {
    missing("adamw_step");
  }
};

}  // namespace

Backend& backend() {
  static CudaBackend instance;
  return instance;
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

}  // namespace shrink::kernels::cuda
