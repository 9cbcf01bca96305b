// 2-D convolution over NCHW through cuDNN (kernels/kernel_list.h conv2d,
// conv2d_backward_input, conv2d_backward_weight; the CPU twin is kernels/cpu/conv.cpp).
//
// Each call looks up the plan of its shape (kernels/cuda/conv_plan.h: descriptors, and per
// direction the algorithm cudnnFind*AlgorithmEx chose on first use with its workspace size),
// takes the workspace from the backend's caching allocator and returns it as soon as the call
// is queued: every kernel runs on the one stream, so the next user of that block is ordered
// after cuDNN (the allocator's stream-ordered frees), and a training step gets the same block
// back every iteration without a cudaMalloc.
//
// cuDNN's legacy descriptors take 32-bit dimensions and strides, so a batch whose tensors
// exceed 2^31 - 1 elements is run as several calls over consecutive images: forward and
// backward-data write disjoint slices, backward-filter accumulates (beta = 1 after the first).
// The bias is added by a kernel of this file (one pass over y).
#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <mutex>
#include <string>

#include "kernels/cuda/conv_plan.h"
#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/cudnn_context.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/tf32.h"
#include "kernels/formulas/unary.h"

namespace shrink::kernels::cuda {

namespace {

// Workspace and scratch from the backend's caching allocator.
class BackendScratch final : public DeviceScratch {
 public:
  explicit BackendScratch(Backend& b) : backend_(b) {}
  void* get(std::size_t bytes) override { return bytes == 0 ? nullptr : backend_.allocate(bytes); }
  void put(void* p, std::size_t bytes) override {
    if (p) backend_.deallocate(p, bytes);
  }

 private:
  Backend& backend_;
};

// A block held for the duration of one queued call (released stream-ordered).
class ScopedBlock {
 public:
  ScopedBlock(DeviceScratch& s, std::size_t bytes) : s_(s), bytes_(bytes), p_(s.get(bytes)) {}
  ScopedBlock(const ScopedBlock&) = delete;
  ScopedBlock& operator=(const ScopedBlock&) = delete;
  ~ScopedBlock() { s_.put(p_, bytes_); }
  void* get() const { return p_; }

 private:
  DeviceScratch& s_;
  std::size_t bytes_;
  void* p_;
};

// cuDNN's alpha and beta: host scalars of the data type (double for float64, float otherwise).
struct Blend {
  float f_zero = 0, f_one = 1;
  double d_zero = 0, d_one = 1;
  bool dbl;
  explicit Blend(DType t) : dbl(t == DType::Float64) {}
  const void* one() const { return dbl ? static_cast<const void*>(&d_one) : &f_one; }
  const void* zero() const { return dbl ? static_cast<const void*>(&d_zero) : &f_zero; }
};

// Images per cuDNN call: as many as keep x and y within 32-bit element counts.
std::int64_t images_per_call(const Conv2dShape& s, const char* op) {
  const std::int64_t per_image = std::max(s.c_in * s.h * s.w, s.c_out * s.out_h() * s.out_w());
  if (per_image > INT_MAX)
    throw Error(std::string("cuda ") + op + ": one image has " + std::to_string(per_image) +
                " input or output elements (c_in=" + std::to_string(s.c_in) + " h=" +
                std::to_string(s.h) + " w=" + std::to_string(s.w) + " c_out=" +
                std::to_string(s.c_out) + "), more than cuDNN's 32-bit strides address");
  return std::max<std::int64_t>(1, std::min<std::int64_t>(s.n, INT_MAX / per_image));
}

// Calls f(chunk shape, first image) over consecutive runs of images.
template <class F>
void for_each_chunk(const Conv2dShape& s, const char* op, F&& f) {
  const std::int64_t per = images_per_call(s, op);
  for (std::int64_t first = 0; first < s.n; first += per) {
    Conv2dShape c = s;
    c.n = std::min(per, s.n - first);
    f(c, first);
  }
}

const char* at(const void* p, std::int64_t elements, std::size_t elem) {
  return static_cast<const char*>(p) + elements * static_cast<std::int64_t>(elem);
}
char* at(void* p, std::int64_t elements, std::size_t elem) {
  return static_cast<char*>(p) + elements * static_cast<std::int64_t>(elem);
}

bool use_tf32(DType t) { return t == DType::Float32 && allow_tf32(); }

// y (n, c, plane) = act((y + bias[c]) + residual): the bias and conv2d's epilogue
// (kernel_types.h ConvEpilogue) in one pass, in the CPU's order and with its formulas
// (formulas/unary.h), so both backends give the separate ops' values.
template <class T>
__global__ void bias_epilogue_kernel(std::int64_t total, std::int64_t plane, std::int64_t channels,
                                     const T* bias, const T* residual, bool activate, UnaryOp activation,
                                     T* y) {
  for (std::int64_t e = grid_start(); e < total; e += grid_step()) {
    T v = y[e];
    if (bias) v += bias[e / plane % channels];
    if (residual) v = v + residual[e];
    if (activate)
      v = activation == UnaryOp::Relu ? formulas::unary_value<UnaryOp::Relu>(v, T(0))
                                      : formulas::unary_value<UnaryOp::Relu6>(v, T(0));
    y[e] = v;
  }
}

}  // namespace

void CudaBackend::conv2d(DType t, const Conv2dShape& s, const void* x, const void* weight,
                         const void* bias, const ConvEpilogue& post, void* y) {
  dispatch_floating(t, [](auto) {}, "conv2d");
  const std::int64_t plane = s.out_h() * s.out_w(), total = s.n * s.c_out * plane;
  if (total == 0) return;
  const std::size_t es = dtype_size(t);
  const Blend blend(t);
  BackendScratch scratch(*this);
  CudnnContext& ctx = cudnn_context();
  {
    std::lock_guard<std::mutex> lock(ctx.mutex);
    for_each_chunk(s, "conv2d", [&](const Conv2dShape& c, std::int64_t first) {
      const char* xc = at(x, first * s.c_in * s.h * s.w, es);
      char* yc = at(y, first * s.c_out * plane, es);
      ConvPlan& p = conv_plan(c, t, use_tf32(t));
      ConvBuffers b;
      b.x_in = xc;
      b.w_in = weight;
      b.y_out = yc;
      const ConvAlgorithm& a = conv_algorithm(p, ConvDirection::Forward, b, scratch);
      SHRINK_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, a.math), p.what + " forward");
      ScopedBlock ws(scratch, a.workspace);
      SHRINK_CUDNN_CHECK(
          cudnnConvolutionForward(ctx.handle, blend.one(), p.x, xc, p.w, weight, p.conv,
                                  static_cast<cudnnConvolutionFwdAlgo_t>(a.algo), ws.get(),
                                  a.workspace, blend.zero(), p.y, yc),
          p.what + " forward");
    });
  }
  if (bias == nullptr && post.none()) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    bias_epilogue_kernel<T><<<blocks_for(total), kThreadsPerBlock, 0, stream()>>>(
        total, plane, s.c_out, static_cast<const T*>(bias), static_cast<const T*>(post.residual), post.activate,
        post.activation, static_cast<T*>(y));
  }, "conv2d");
  check_launch("conv2d (bias, epilogue)");
}

void CudaBackend::conv2d_backward_input(DType t, const Conv2dShape& s, const void* weight,
                                        const void* dy, void* dx) {
  dispatch_floating(t, [](auto) {}, "conv2d_backward_input");
  if (s.n * s.c_in * s.h * s.w == 0) return;
  const std::size_t es = dtype_size(t);
  const std::int64_t out_image = s.c_out * s.out_h() * s.out_w(), in_image = s.c_in * s.h * s.w;
  const Blend blend(t);
  BackendScratch scratch(*this);
  CudnnContext& ctx = cudnn_context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  for_each_chunk(s, "conv2d_backward_input", [&](const Conv2dShape& c, std::int64_t first) {
    const char* dyc = at(dy, first * out_image, es);
    char* dxc = at(dx, first * in_image, es);
    ConvPlan& p = conv_plan(c, t, use_tf32(t));
    ConvBuffers b;
    b.w_in = weight;
    b.y_in = dyc;
    b.x_out = dxc;
    const ConvAlgorithm& a = conv_algorithm(p, ConvDirection::BackwardData, b, scratch);
    SHRINK_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, a.math), p.what + " backward-data");
    ScopedBlock ws(scratch, a.workspace);
    SHRINK_CUDNN_CHECK(
        cudnnConvolutionBackwardData(ctx.handle, blend.one(), p.w, weight, p.y, dyc, p.conv,
                                     static_cast<cudnnConvolutionBwdDataAlgo_t>(a.algo), ws.get(),
                                     a.workspace, blend.zero(), p.x, dxc),
        p.what + " backward-data");
  });
}

void CudaBackend::conv2d_backward_weight(DType t, const Conv2dShape& s, const void* x,
                                         const void* dy, void* dweight) {
  dispatch_floating(t, [](auto) {}, "conv2d_backward_weight");
  const std::size_t es = dtype_size(t);
  const std::int64_t weights = s.c_out * (s.c_in / s.groups) * s.kh * s.kw;
  if (weights == 0) return;
  if (s.n == 0) {  // a sum over no images
    SHRINK_CUDA_CHECK(
        cudaMemsetAsync(dweight, 0, static_cast<std::size_t>(weights) * es, stream()));
    return;
  }
  const std::int64_t out_image = s.c_out * s.out_h() * s.out_w(), in_image = s.c_in * s.h * s.w;
  const Blend blend(t);
  BackendScratch scratch(*this);
  CudnnContext& ctx = cudnn_context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  for_each_chunk(s, "conv2d_backward_weight", [&](const Conv2dShape& c, std::int64_t first) {
    const char* xc = at(x, first * in_image, es);
    const char* dyc = at(dy, first * out_image, es);
    ConvPlan& p = conv_plan(c, t, use_tf32(t));
    if (!p.algorithms[static_cast<int>(ConvDirection::BackwardFilter)].chosen) {
      // The search writes its output: a scratch one, so chunks summed so far survive it.
      ScopedBlock sink(scratch, static_cast<std::size_t>(weights) * es);
      ConvBuffers b;
      b.x_in = xc;
      b.y_in = dyc;
      b.w_out = sink.get();
      conv_algorithm(p, ConvDirection::BackwardFilter, b, scratch);
    }
    const ConvAlgorithm& a = p.algorithms[static_cast<int>(ConvDirection::BackwardFilter)];
    SHRINK_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, a.math), p.what + " backward-filter");
    ScopedBlock ws(scratch, a.workspace);
    SHRINK_CUDNN_CHECK(
        cudnnConvolutionBackwardFilter(ctx.handle, blend.one(), p.x, xc, p.y, dyc, p.conv,
                                       static_cast<cudnnConvolutionBwdFilterAlgo_t>(a.algo),
                                       ws.get(), a.workspace,
                                       first == 0 ? blend.zero() : blend.one(), p.w, dweight),
        p.what + " backward-filter");
  });
}

}  // namespace shrink::kernels::cuda
