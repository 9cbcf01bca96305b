// cuDNN convolution plans and the once-per-shape algorithm search (kernels/cuda/conv_plan.h).
#include <cudnn.h>

#include <algorithm>
#include <array>
#include <climits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/conv_plan.h"
#include "kernels/cuda/cuda_backend_impl.h"

namespace shrink::kernels::cuda {

namespace {

// The search times every algorithm that fits its workspace; one needing more than this is
// left out (cuDNN's convolutions of the models here ask for a few MiB).
constexpr std::size_t kSearchWorkspaceCap = std::size_t{1} << 30;

std::string describe(const Conv2dShape& s, DType t) {
  auto pair = [](std::int64_t a, std::int64_t b) {
    return std::to_string(a) + "x" + std::to_string(b);
  };
  return "conv2d " + std::string(dtype_name(t)) + " n=" + std::to_string(s.n) +
         " c_in=" + std::to_string(s.c_in) + " h=" + std::to_string(s.h) + " w=" +
         std::to_string(s.w) + " c_out=" + std::to_string(s.c_out) + " kernel " +
         pair(s.kh, s.kw) + " stride " + pair(s.stride_h, s.stride_w) + " padding " +
         pair(s.pad_h, s.pad_w) + " dilation " + pair(s.dilation_h, s.dilation_w) +
         " groups " + std::to_string(s.groups);
}

int to_int(std::int64_t v, const char* field, const std::string& what) {
  if (v < 0 || v > INT_MAX)
    throw Error("cuda " + what + ": " + field + " = " + std::to_string(v) +
                " is outside cuDNN's 32-bit range");
  return static_cast<int>(v);
}

cudnnDataType_t cudnn_type(DType t) {
  return t == DType::Float64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
}

// Float32 without TF32 asks for FMA math: CUDNN_DEFAULT_MATH lets cuDNN use TF32 tensor cores
// on Ampere and later, which would put ~1e-3 relative error between the GPU and the CPU (the
// same choice kernels/cuda/gemm.cu makes for cuBLAS, and PyTorch makes with allow_tf32 off).
bool float32_exact(const ConvPlan& p) { return p.dtype == DType::Float32 && !p.tf32; }

cudnnMathType_t requested_math(const ConvPlan& p) {
  if (p.dtype == DType::Float64) return CUDNN_DEFAULT_MATH;
  return p.tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

// ALLOW_CONVERSION rounds float32 operands to half precision: never acceptable here.
bool acceptable_math(const ConvPlan& p, cudnnMathType_t m) {
  if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  return !(float32_exact(p) && m == CUDNN_TENSOR_OP_MATH);
}

std::unique_ptr<ConvPlan> make_plan(const Conv2dShape& s, DType t, bool tf32) {
  auto p = std::make_unique<ConvPlan>();
  p->shape = s;
  p->dtype = t;
  p->tf32 = tf32;
  p->what = describe(s, t);
  const std::string& what = p->what;
  const cudnnDataType_t dt = cudnn_type(t);
  SHRINK_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x), what);
  SHRINK_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y), what);
  SHRINK_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w), what);
  SHRINK_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv), what);
  SHRINK_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, dt, to_int(s.n, "n", what),
                                                to_int(s.c_in, "c_in", what),
                                                to_int(s.h, "h", what), to_int(s.w, "w", what)),
                     what);
  SHRINK_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, dt, to_int(s.n, "n", what),
                                                to_int(s.c_out, "c_out", what),
                                                to_int(s.out_h(), "out_h", what),
                                                to_int(s.out_w(), "out_w", what)),
                     what);
  SHRINK_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, dt, CUDNN_TENSOR_NCHW,
                                                to_int(s.c_out, "c_out", what),
                                                to_int(s.c_in / s.groups, "c_in / groups", what),
                                                to_int(s.kh, "kh", what), to_int(s.kw, "kw", what)),
                     what);
  // Cross-correlation, as PyTorch and the CPU kernels; accumulation in the data type.
  SHRINK_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(
                         p->conv, to_int(s.pad_h, "pad_h", what), to_int(s.pad_w, "pad_w", what),
                         to_int(s.stride_h, "stride_h", what), to_int(s.stride_w, "stride_w", what),
                         to_int(s.dilation_h, "dilation_h", what),
                         to_int(s.dilation_w, "dilation_w", what), CUDNN_CROSS_CORRELATION, dt),
                     what);
  SHRINK_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv, to_int(s.groups, "groups", what)),
                     what);
  SHRINK_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, requested_math(*p)), what);
  // cuDNN and Conv2dShape must agree on the output size, or every index below is wrong.
  int on = 0, oc = 0, oh = 0, ow = 0;
  SHRINK_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &oh, &ow),
                     what);
  if (on != s.n || oc != s.c_out || oh != s.out_h() || ow != s.out_w())
    throw Error("cuda " + what + ": cuDNN computes an output of " + std::to_string(on) + "x" +
                std::to_string(oc) + "x" + std::to_string(oh) + "x" + std::to_string(ow) +
                " but the kernel expects " + std::to_string(s.n) + "x" + std::to_string(s.c_out) +
                "x" + std::to_string(s.out_h()) + "x" + std::to_string(s.out_w()));
  return p;
}

// Algorithms whose rounding is that of a plain sum of products (implicit or explicit GEMM,
// direct), as the CPU's. FFT and Winograd transform the operands and round more (errors
// relative to the whole tile rather than to each output's own terms), so they are used only
// where TF32 already trades precision for speed.
bool sums_plainly(cudnnConvolutionFwdAlgo_t a) { return a <= CUDNN_CONVOLUTION_FWD_ALGO_DIRECT; }
bool sums_plainly(cudnnConvolutionBwdDataAlgo_t a) {
  return a <= CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
}
bool sums_plainly(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

// The first (fastest, as cuDNN sorts them) usable result: succeeded, fits `limit` bytes of
// workspace, an acceptable math type, deterministic when `deterministic` (so that the same
// inputs give the same bits, like every other kernel of the backend) and a plain sum when
// `plain`.
template <class Perf>
const Perf* pick(const ConvPlan& p, const std::vector<Perf>& perf, int count, std::size_t limit,
                 bool deterministic, bool plain) {
  for (int i = 0; i < count; ++i) {
    const Perf& r = perf[static_cast<std::size_t>(i)];
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > limit || !acceptable_math(p, r.mathType))
      continue;
    if (deterministic && r.determinism != CUDNN_DETERMINISTIC) continue;
    if (plain && !sums_plainly(r.algo)) continue;
    return &r;
  }
  return nullptr;
}

// Preferences in order: without TF32, plain sums first (deterministic, then any); then
// deterministic; then anything usable.
template <class Perf>
const Perf* pick_any(const ConvPlan& p, const std::vector<Perf>& perf, int count,
                     std::size_t limit) {
  const Perf* r = nullptr;
  if (!p.tf32) {
    r = pick(p, perf, count, limit, true, true);
    if (!r) r = pick(p, perf, count, limit, false, true);
  }
  if (!r) r = pick(p, perf, count, limit, true, false);
  if (!r) r = pick(p, perf, count, limit, false, false);
  return r;
}

// One direction's search. `heuristics(count, &returned, perf)` lists the algorithms
// (cudnnGet*_v7, which also says what workspace each needs); `find(count, &returned, perf,
// ws, bytes)` times them on the real buffers (cudnnFind*AlgorithmEx); `workspace(algo,
// &bytes)` gives the chosen one's workspace under the math type it will run with.
template <class Perf, class Heuristics, class Find, class Workspace>
ConvAlgorithm search(ConvPlan& p, const char* direction, int max_count, Heuristics heuristics,
                     Find find, Workspace workspace, DeviceScratch& scratch) {
  const std::string what = p.what + " " + direction;
  SHRINK_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, requested_math(p)), what);
  const int count = std::max(max_count, 1);
  std::vector<Perf> listed(static_cast<std::size_t>(count));
  int n_listed = 0;
  SHRINK_CUDNN_CHECK(heuristics(count, &n_listed, listed.data()), what);

  // The search's workspace: the most any listed algorithm asks for, capped; halved while the
  // device cannot provide it (algorithms that need more are then not timed).
  std::size_t bytes = 0;
  for (int i = 0; i < n_listed; ++i) {
    const Perf& r = listed[static_cast<std::size_t>(i)];
    if (r.status == CUDNN_STATUS_SUCCESS && acceptable_math(p, r.mathType))
      bytes = std::max(bytes, r.memory);
  }
  bytes = std::min(bytes, kSearchWorkspaceCap);
  void* ws = nullptr;
  while (bytes > 0) {
    try {
      ws = scratch.get(bytes);
      break;
    } catch (const Error&) {  // out of device memory: try with less
      bytes /= 2;
    }
  }
  std::vector<Perf> found(static_cast<std::size_t>(count));
  int n_found = 0;
  const cudnnStatus_t status = find(count, &n_found, found.data(), ws, bytes);
  scratch.put(ws, bytes);  // stream-ordered: nothing reuses it before the search's kernels ran
  SHRINK_CUDNN_CHECK(status, what);

  const Perf* best = pick_any(p, found, n_found, bytes);
  if (best == nullptr) best = pick_any(p, listed, n_listed, SIZE_MAX);  // heuristics' choice
  if (best == nullptr)
    throw Error("cuda " + what + ": cuDNN offers no algorithm for this convolution (" +
                std::to_string(n_found) + " timed, " + std::to_string(n_listed) + " listed)");
  ConvAlgorithm a;
  a.algo = static_cast<int>(best->algo);
  a.math = float32_exact(p) ? CUDNN_FMA_MATH : best->mathType;
  SHRINK_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv, a.math), what);
  SHRINK_CUDNN_CHECK(workspace(a.algo, &a.workspace), what);
  a.chosen = true;
  return a;
}

}  // namespace

ConvPlan& conv_plan(const Conv2dShape& s, DType t, bool tf32) {
  using Key = std::array<std::int64_t, 16>;
  static auto* plans = new std::map<Key, std::unique_ptr<ConvPlan>>;  // never destroyed
  const Key key = {static_cast<std::int64_t>(t), tf32 ? 1 : 0, s.n, s.c_in, s.h, s.w, s.c_out,
                   s.kh, s.kw, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilation_h,
                   s.dilation_w, s.groups};
  auto it = plans->find(key);
  if (it == plans->end()) it = plans->emplace(key, make_plan(s, t, tf32)).first;
  return *it->second;
}

const ConvAlgorithm& conv_algorithm(ConvPlan& p, ConvDirection dir, const ConvBuffers& b,
                                    DeviceScratch& scratch) {
  ConvAlgorithm& slot = p.algorithms[static_cast<int>(dir)];
  if (slot.chosen) return slot;
  cudnnHandle_t h = cudnn_context().handle;
  int max_count = 0;
  switch (dir) {
    case ConvDirection::Forward:
      SHRINK_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count), p.what);
      slot = search<cudnnConvolutionFwdAlgoPerf_t>(
          p, "forward", max_count,
          [&](int n, int* got, cudnnConvolutionFwdAlgoPerf_t* r) {
            return cudnnGetConvolutionForwardAlgorithm_v7(h, p.x, p.w, p.conv, p.y, n, got, r);
          },
          [&](int n, int* got, cudnnConvolutionFwdAlgoPerf_t* r, void* ws, std::size_t bytes) {
            return cudnnFindConvolutionForwardAlgorithmEx(h, p.x, b.x_in, p.w, b.w_in, p.conv, p.y,
                                                          b.y_out, n, got, r, ws, bytes);
          },
          [&](int algo, std::size_t* bytes) {
            return cudnnGetConvolutionForwardWorkspaceSize(
                h, p.x, p.w, p.conv, p.y, static_cast<cudnnConvolutionFwdAlgo_t>(algo), bytes);
          },
          scratch);
      break;
    case ConvDirection::BackwardData:
      SHRINK_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_count), p.what);
      slot = search<cudnnConvolutionBwdDataAlgoPerf_t>(
          p, "backward-data", max_count,
          [&](int n, int* got, cudnnConvolutionBwdDataAlgoPerf_t* r) {
            return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w, p.y, p.conv, p.x, n, got, r);
          },
          [&](int n, int* got, cudnnConvolutionBwdDataAlgoPerf_t* r, void* ws, std::size_t bytes) {
            return cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w, b.w_in, p.y, b.y_in, p.conv,
                                                               p.x, b.x_out, n, got, r, ws, bytes);
          },
          [&](int algo, std::size_t* bytes) {
            return cudnnGetConvolutionBackwardDataWorkspaceSize(
                h, p.w, p.y, p.conv, p.x, static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), bytes);
          },
          scratch);
      break;
    case ConvDirection::BackwardFilter:
      SHRINK_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max_count), p.what);
      slot = search<cudnnConvolutionBwdFilterAlgoPerf_t>(
          p, "backward-filter", max_count,
          [&](int n, int* got, cudnnConvolutionBwdFilterAlgoPerf_t* r) {
            return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x, p.y, p.conv, p.w, n, got,
                                                                 r);
          },
          [&](int n, int* got, cudnnConvolutionBwdFilterAlgoPerf_t* r, void* ws,
              std::size_t bytes) {
            return cudnnFindConvolutionBackwardFilterAlgorithmEx(
                h, p.x, b.x_in, p.y, b.y_in, p.conv, p.w, b.w_out, n, got, r, ws, bytes);
          },
          [&](int algo, std::size_t* bytes) {
            return cudnnGetConvolutionBackwardFilterWorkspaceSize(
                h, p.x, p.y, p.conv, p.w, static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo),
                bytes);
          },
          scratch);
      break;
  }
  return slot;
}

}  // namespace shrink::kernels::cuda
