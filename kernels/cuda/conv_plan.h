// Private to kernels/cuda (conv.cu): cuDNN convolution plans, one per (shape, dtype, TF32
// choice), each holding its descriptors and, per direction, the algorithm chosen the first
// time that direction ran together with the workspace it needs. Later calls of the same shape
// look the plan up and run at once: no search, no descriptor set-up, no cudaMalloc (the
// workspace comes from the backend's caching allocator, which hands the same block back every
// step).
#pragma once
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/cuda/cudnn_context.h"
#include "kernels/kernel_types.h"
#include "kernels/types.h"

namespace shrink::kernels::cuda {

enum class ConvDirection : int { Forward = 0, BackwardData = 1, BackwardFilter = 2 };

// The algorithm of one direction: cuDNN's enum value (forward, backward-data and
// backward-filter algorithms are distinct enums), the math type it runs with, and the
// workspace bytes it needs.
struct ConvAlgorithm {
  bool chosen = false;
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  std::size_t workspace = 0;
};

// Descriptors of one convolution call: s.n is the images of one cuDNN call (conv.cu splits
// larger batches so that every tensor's element count fits cuDNN's 32-bit strides).
struct ConvPlan {
  Conv2dShape shape;
  DType dtype = DType::Float32;
  bool tf32 = false;
  std::string what;  // "conv2d (n=.. c_in=.. ...) float32", for error messages
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ConvAlgorithm algorithms[3];  // indexed by ConvDirection
};

// The device buffers one direction reads and writes (the same as the call it is searched
// for): forward reads x, w and writes y; backward-data reads w, dy (in y) and writes dx (in
// x); backward-filter reads x, dy (in y) and writes dw (in w). The search runs the candidate
// algorithms on them, so it overwrites the output: callers pass a scratch output where its
// contents must survive (backward-filter accumulating over batch chunks).
struct ConvBuffers {
  const void* x_in = nullptr;
  void* x_out = nullptr;
  const void* w_in = nullptr;
  void* w_out = nullptr;
  const void* y_in = nullptr;
  void* y_out = nullptr;
};

// Allocation from the backend's caching allocator, for workspaces (conv.cu passes its
// CudaBackend's allocate/deallocate).
struct DeviceScratch {
  virtual void* get(std::size_t bytes) = 0;
  virtual void put(void* p, std::size_t bytes) = 0;
  virtual ~DeviceScratch() = default;
};

// The plan for shape `s` (s.n images per call), dtype and TF32 choice; created on first use
// and kept for the life of the process. Caller holds cudnn_context().mutex.
ConvPlan& conv_plan(const Conv2dShape& s, DType t, bool tf32);

// The algorithm of `dir` for `plan`, searched on first use with cudnnFind*AlgorithmEx over
// `buffers` (timing every algorithm that fits the workspace cuDNN asks for, up to a cap) and
// cached in the plan. Without TF32 the math type keeps float32 out of tensor cores and the
// fastest deterministic GEMM-like algorithm wins (FFT and Winograd round differently from the
// CPU); with TF32 the fastest deterministic one. Caller holds cudnn_context().mutex.
const ConvAlgorithm& conv_algorithm(ConvPlan& plan, ConvDirection dir, const ConvBuffers& buffers,
                                    DeviceScratch& scratch);

}  // namespace shrink::kernels::cuda
