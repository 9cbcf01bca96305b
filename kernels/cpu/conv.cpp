// 2-D convolution over NCHW (kernels/kernel_list.h conv2d, conv2d_backward_input,
// conv2d_backward_weight; the shape is kernels::Conv2dShape).
//
// Float, not depthwise: Winograd F(4x4, 3x3) for 3x3 stride-1 layers where it saves products
// (forward and the stride-1 backward-input, which is a forward convolution: the channels-last
// kernel of conv_winograd_channels_last.h on small maps and narrow layers, else the batched one
// of conv_winograd.h; backward-weight from 32 channels each way), else the direct kernels of
// conv_direct.h (the micro-kernel reads a padded copy of each image; no im2col matrix).
// Depthwise (groups == c_in == c_out): the row loops of conv_depthwise_rows.h, one plane
// against one small filter (as a GEMM it would have m = 1), except in float: forwards with output rows of at most 8
// pixels run 8 channels per vector (conv_depthwise_blocked.h) and 3x3 stride-1 forwards on
// wider rows sweep rolling row sums down the plane (conv_depthwise_3x3.h); backward-input at
// stride 1 is those forwards on the flipped kernel, else 8-channel blocks, as is every
// backward-weight (conv_depthwise_blocked.h). The rest — float64 (the gradient checks) and
// float backward-input at stride > 1 — goes through im2col and the GEMM:
//
// Per group (cig = c_in/groups, cog = c_out/groups, K = cig kh kw, P = out_h out_w), with B
// images side by side (col has B P columns; see dims_of for how B is chosen):
//   forward          col (K, B P) = im2col(x_g);   y_g (cog, B P) = W_g (cog, K) col  (+ bias)
//   backward input   dcol (K, B P) = W_g^T dy_g;   dx_g = col2im(dcol)
//   backward weight  dW_g (cog, K) += dy_g (cog, B P) col^T, blocks of images in order
// y_g and dy_g are NCHW, so for B > 1 they pass through a (cog, B P) block (one copy, cheap
// beside a K-deep product). A 1x1, stride-1, unpadded convolution of one image skips im2col:
// col is x_g itself.
//
// conv2d_residual_chain (residual blocks with identity shortcuts, inference): runs of blocks whose
// convolutions all prefer the channels-last Winograd go through it at once, the maps between them
// kept in its padded layout (conv_winograd_channels_last.h); any other block is two conv2d calls
// through a scratch block.
//
// Threading and determinism: forward and backward-input give whole blocks of images to
// threads when there are enough (serial GEMM inside: it declines to fork within a parallel
// region); otherwise, and always for backward-weight, blocks run in turn and the GEMM (fixed
// per-element k order), im2col, col2im and the block copies thread internally over whole
// (image, channel) planes. B depends on the shape alone, so every output element is summed in
// an order that does not depend on the thread count.
#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cpu/chain_scratch.h"
#include "kernels/cpu/conv_algorithm.h"
#include "kernels/cpu/conv_depthwise_3x3.h"
#include "kernels/cpu/conv_depthwise_blocked.h"
#include "kernels/cpu/conv_depthwise_rows.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/conv_epilogue.h"
#include "kernels/cpu/conv_weight_pixels.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/conv_winograd_channels_last.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/filter_cache.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/im2col.h"
#include "kernels/cpu/tiling.h"

namespace shrink::kernels::cpu {

namespace {

// Scratch buffers (slot 0: columns, slot 1: a gathered or GEMM-output block): grow-only and
// kept across calls. A training step calls the same shapes every iteration, so after the
// first step no call allocates or page-faults (the reason the GEMM's packing buffers are
// thread_local too). thread_local rather than global: two threads may run convolutions at once.
template <class T, int Slot>
T* scratch(std::int64_t elements) {
  thread_local std::vector<T> buffer;
  if (static_cast<std::int64_t>(buffer.size()) < elements)
    buffer.resize(static_cast<std::size_t>(elements));
  return buffer.data();
}

// Images per GEMM (B), from the shape alone (never the thread count), so every sum keeps its
// order on any number of threads.
// Forward and backward-input: blocks of images are independent, and with at least as many
// blocks as threads each thread takes whole blocks with a serial GEMM, its col (K, B P)
// sized to stay in this core's L2 (kL2Elements): measured faster than stacking the batch into
// one wide threaded GEMM, whose col streams from memory.
// Backward-weight sums over images, so blocks run in turn with the threaded GEMM; stacking
// images gives that GEMM a deep k = B P >= kGemmColumns, capped at kColBudget elements of col.
constexpr std::int64_t kL2Elements = std::int64_t{1} << 16;
constexpr std::int64_t kGemmColumns = 4096;
constexpr std::int64_t kColBudget = std::int64_t{1} << 22;

enum class Pass { Independent, SumOverImages };

struct Dims {
  std::int64_t cig, cog, k, p, hw;  // K = cig kh kw rows of col, P = out_h out_w columns
  bool direct;                      // 1x1, stride 1, no padding: one image's col is x_g
  std::int64_t images;              // B, images per GEMM
  std::int64_t blocks;              // ceil(n / B)
  bool blocks_in_parallel;          // whole blocks per thread (Independent passes only)
};
Dims dims_of(const Conv2dShape& s, Pass pass) {
  Dims d;
  d.cig = s.c_in / s.groups;
  d.cog = s.c_out / s.groups;
  d.k = d.cig * s.kh * s.kw;
  d.p = s.out_h() * s.out_w();
  d.hw = s.h * s.w;
  d.direct = s.kh == 1 && s.kw == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 &&
             s.pad_w == 0;
  const std::int64_t kp = std::max<std::int64_t>(d.k * d.p, 1);
  const std::int64_t want = pass == Pass::Independent
                                ? kL2Elements / kp
                                : std::min((kGemmColumns + d.p - 1) / std::max<std::int64_t>(d.p, 1),
                                           kColBudget / kp);
  d.images = std::clamp<std::int64_t>(want, 1, std::max<std::int64_t>(s.n, 1));
  d.blocks = (s.n + d.images - 1) / d.images;
  d.blocks_in_parallel = pass == Pass::Independent && d.blocks > 1 &&
                         d.blocks >= omp_get_max_threads() &&
                         s.n * s.c_out * d.p * d.k > kConvParallelWork;
  return d;
}

// Between the NCHW tensor and a block (rows, nb P) of a GEMM: block[o, b P + p] is
// t[b image_stride + o P + p]. Rows and images are independent copies.
template <class T>
void gather_block(const T* t, std::int64_t image_stride, std::int64_t nb, std::int64_t rows,
                  std::int64_t p, T* block) {
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && nb * rows * p > kParallelGrain)
  for (std::int64_t bo = 0; bo < nb * rows; ++bo) {
    const std::int64_t b = bo / rows, o = bo % rows;
    std::copy_n(t + b * image_stride + o * p, p, block + o * nb * p + b * p);
  }
}
template <class T>
void scatter_block(const T* block, std::int64_t nb, std::int64_t rows, std::int64_t p,
                   const T* bias, T* t, std::int64_t image_stride) {
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && nb * rows * p > kParallelGrain)
  for (std::int64_t bo = 0; bo < nb * rows; ++bo) {
    const std::int64_t b = bo / rows, o = bo % rows;
    const T* src = block + o * nb * p + b * p;
    T* dst = t + b * image_stride + o * p;
    const T add = bias ? bias[o] : T(0);
#pragma omp simd
    for (std::int64_t j = 0; j < p; ++j) dst[j] = src[j] + add;
  }
}

// ---- im2col + GEMM, B images at a time ----

template <class T>
void forward_gemm(const Conv2dShape& s, const T* x, const T* w, const T* bias, const ConvEpilogue& post, T* y) {
  const Dims d = dims_of(s, Pass::Independent);
  const std::int64_t x_image = s.c_in * d.hw, y_image = s.c_out * d.p;
#pragma omp parallel for schedule(static) if (d.blocks_in_parallel)
  for (std::int64_t blk = 0; blk < d.blocks; ++blk) {
    const bool threaded = !omp_in_parallel();
    T* col = scratch<T, 0>(d.k * d.images * d.p);     // (K, B P)
    T* block = scratch<T, 1>(d.cog * d.images * d.p);  // (cog, B P)
    const std::int64_t n0 = blk * d.images;
    const std::int64_t nb = std::min(d.images, s.n - n0), cols = nb * d.p;
    for (std::int64_t g = 0; g < s.groups; ++g) {
      const T* x_g = x + n0 * x_image + g * d.cig * d.hw;  // nb x (cig, h, w)
      T* y_g = y + n0 * y_image + g * d.cog * d.p;        // nb x (cog, P)
      const T* b_g = bias ? bias + g * d.cog : nullptr;
      const bool direct = d.direct && nb == 1;
      if (!direct) im2col(s, d.cig, x_g, x_image, nb, col, cols, threaded);
      T* out = nb == 1 ? y_g : block;
      gemm(false, false, d.cog, cols, d.k, T(1), w + g * d.cog * d.k, d.k, direct ? x_g : col, cols,
             T(0), out, cols);
      if (nb > 1 || b_g) scatter_block(out, nb, d.cog, d.p, b_g, y_g, y_image);
    }
    // The epilogue on the block's images, while they are in this thread's cache.
    const std::int64_t first = n0 * s.c_out * d.p;
    if (!post.none()) apply_epilogue(post, residual_at<T>(post, first), y + first, nb * y_image);
  }
}

template <class T>
void backward_input_gemm(const Conv2dShape& s, const T* w, const T* dy, T* dx) {
  const Dims d = dims_of(s, Pass::Independent);
  const std::int64_t x_image = s.c_in * d.hw, y_image = s.c_out * d.p;
#pragma omp parallel for schedule(static) if (d.blocks_in_parallel)
  for (std::int64_t blk = 0; blk < d.blocks; ++blk) {
    const bool threaded = !omp_in_parallel();
    T* dcol = scratch<T, 0>(d.k * d.images * d.p);     // (K, B P)
    T* block = scratch<T, 1>(d.cog * d.images * d.p);  // (cog, B P)
    const std::int64_t n0 = blk * d.images;
    const std::int64_t nb = std::min(d.images, s.n - n0), cols = nb * d.p;
    for (std::int64_t g = 0; g < s.groups; ++g) {
      const T* dy_g = dy + n0 * y_image + g * d.cog * d.p;  // nb x (cog, P)
      T* dx_g = dx + n0 * x_image + g * d.cig * d.hw;       // nb x (cig, h, w)
      const T* w_g = w + g * d.cog * d.k;                   // (cog, K)
      if (nb > 1) gather_block(dy_g, y_image, nb, d.cog, d.p, block);
      const T* dys = nb > 1 ? block : dy_g;  // (cog, nb P)
      if (d.direct && nb == 1) {             // dx_g (cig, hw) = W_g^T dy_g
        gemm(true, false, d.k, d.p, d.cog, T(1), w_g, d.k, dys, d.p, T(0), dx_g, d.p);
        continue;
      }
      gemm(true, false, d.k, cols, d.cog, T(1), w_g, d.k, dys, cols, T(0), dcol, cols);
      for (std::int64_t b = 0; b < nb; ++b)
        std::fill_n(dx_g + b * x_image, d.cig * d.hw, T(0));
      col2im_add(s, d.cig, dcol, cols, nb, dx_g, x_image, threaded);
    }
  }
}

template <class T>
void backward_weight_gemm(const Conv2dShape& s, const T* x, const T* dy, T* dw) {
  const Dims d = dims_of(s, Pass::SumOverImages);
  if (s.n == 0) std::fill(dw, dw + s.c_out * d.k, T(0));
  T* col = scratch<T, 0>(d.k * d.images * d.p);      // (K, B P)
  T* block = scratch<T, 1>(d.cog * d.images * d.p);  // (cog, B P)
  const std::int64_t x_image = s.c_in * d.hw, y_image = s.c_out * d.p;
  for (std::int64_t n0 = 0; n0 < s.n; n0 += d.images) {
    const std::int64_t nb = std::min(d.images, s.n - n0), cols = nb * d.p;
    for (std::int64_t g = 0; g < s.groups; ++g) {
      const T* x_g = x + n0 * x_image + g * d.cig * d.hw;
      const T* dy_g = dy + n0 * y_image + g * d.cog * d.p;
      const bool direct = d.direct && nb == 1;
      if (!direct) im2col(s, d.cig, x_g, x_image, nb, col, cols, true);
      if (nb > 1) gather_block(dy_g, y_image, nb, d.cog, d.p, block);
      // dW_g (cog, K) (+)= dy (cog, nb P) col^T; the first block overwrites.
      gemm(false, true, d.cog, d.k, cols, T(1), nb > 1 ? block : dy_g, cols, direct ? x_g : col, cols,
             n0 == 0 ? T(0) : T(1), dw + g * d.cog * d.k, d.k);
    }
  }
}

// Float convolutions on the kernel conv_algorithm.h chooses.
void forward_float(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y,
                   const ConvEpilogue& post = {}) {
  switch (forward_algorithm(s)) {
    case ConvAlgorithm::WinogradChannelsLast: return conv2d_forward_winograd_channels_last(s, x, w, bias, y, post);
    case ConvAlgorithm::Winograd: return conv2d_forward_winograd(s, x, w, bias, y, post);
    case ConvAlgorithm::DepthwiseBlocked: return conv2d_forward_depthwise_blocked(s, x, w, bias, post, y);
    case ConvAlgorithm::Depthwise3x3: return conv2d_forward_depthwise_3x3(s, x, w, bias, post, y);
    case ConvAlgorithm::Depthwise: return conv2d_forward_depthwise_rows(s, x, w, bias, post, y);
    default: return conv2d_forward_direct(s, x, w, bias, y, post);
  }
}

}  // namespace

void CpuBackend::conv2d(DType t, const Conv2dShape& s, const void* x, const void* weight,
                        const void* bias, const ConvEpilogue& post, void* y) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const auto* xs = static_cast<const T*>(x);
    const auto* ws = static_cast<const T*>(weight);
    const auto* bs = static_cast<const T*>(bias);
    T* ys = static_cast<T*>(y);
    if constexpr (std::is_same_v<T, float>) return forward_float(s, xs, ws, bs, ys, post);
    if (!is_depthwise(s)) forward_gemm(s, xs, ws, bs, post, ys);
    else conv2d_forward_depthwise_rows(s, xs, ws, bs, post, ys);
  }, "conv2d");
}

void CpuBackend::conv2d_residual_chain(DType t, std::int64_t blocks, const Conv2dShape* s1, const Conv2dShape* s2,
                                       const void* x, const void* const* w1, const void* const* b1,
                                       const void* const* w2, const void* const* b2, void* y) {
  // Slots 0 and 1 hold the maps between segments (in turn), slot 2 the intermediate of a block
  // run apart (the widest).
  ChainScratch scratch(*this);
  const auto map_bytes = [&](const Conv2dShape& s) { return output_map_bytes(s, t); };
  std::size_t mid_bytes = 0;
  for (std::int64_t b = 0; b < blocks; ++b) mid_bytes = std::max(mid_bytes, map_bytes(s1[b]));
  const auto fuses = [&](std::int64_t b) { return t == DType::Float32 && residual_pair_fuses(s1[b], s2[b]); };
  const void* in = x;
  for (std::int64_t b = 0; b < blocks;) {
    std::int64_t end = b;  // [b, end): the blocks the channels-last chain runs at once
    while (end < blocks && fuses(end)) ++end;
    const std::int64_t last = std::max(end, b + 1);  // this segment's end (one block apart)
    void* out = y;
    if (last < blocks) out = scratch.other_than(in, map_bytes(s2[0]));
    if (end > b) {
      std::vector<const float*> pw1, pb1, pw2, pb2;
      for (std::int64_t i = b; i < end; ++i) {
        pw1.push_back(static_cast<const float*>(w1[i]));
        pb1.push_back(static_cast<const float*>(b1[i]));
        pw2.push_back(static_cast<const float*>(w2[i]));
        pb2.push_back(static_cast<const float*>(b2[i]));
      }
      conv2d_residual_chain_winograd_channels_last(end - b, s1 + b, s2 + b, static_cast<const float*>(in), pw1.data(),
                                                   pb1.data(), pw2.data(), pb2.data(), static_cast<float*>(out));
    } else {  // apart: conv (+ ReLU) into a scratch block, then conv (+ the input, ReLU)
      void* mid = scratch.get(2, mid_bytes);
      ConvEpilogue first;
      first.activate = true;
      first.activation = UnaryOp::Relu;
      ConvEpilogue second = first;
      second.residual = in;
      conv2d(t, s1[b], in, w1[b], b1[b], first, mid);
      conv2d(t, s2[b], mid, w2[b], b2[b], second, out);
    }
    in = out;
    b = last;
  }
}

void CpuBackend::conv2d_backward_input(DType t, const Conv2dShape& s, const void* weight,
                                       const void* dy, void* dx) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const auto* ws = static_cast<const T*>(weight);
    const auto* dys = static_cast<const T*>(dy);
    if constexpr (std::is_same_v<T, float>) {
      const ConvAlgorithm algorithm = backward_input_algorithm(s);
      if (!backward_input_is_forward(s) && algorithm == ConvAlgorithm::DepthwiseBlocked)
        return conv2d_backward_input_depthwise_blocked(s, ws, dys, static_cast<T*>(dx));
      if (algorithm != ConvAlgorithm::Im2colGemm) {
        thread_local std::vector<float> flipped;
        const Conv2dShape t = backward_input_as_forward(s, ws, flipped);
        const FilterCacheBypass made_for_this_call;  // flipped changes with every step: nothing to keep
        return forward_float(t, dys, flipped.data(), nullptr, static_cast<T*>(dx));
      }
    }
    if (is_depthwise(s)) conv2d_backward_input_depthwise_rows(s, ws, dys, static_cast<T*>(dx));
    else backward_input_gemm(s, ws, dys, static_cast<T*>(dx));
  }, "conv2d_backward_input");
}

void CpuBackend::conv2d_backward_weight(DType t, const Conv2dShape& s, const void* x,
                                        const void* dy, void* dweight) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const auto* xs = static_cast<const T*>(x);
    const auto* dys = static_cast<const T*>(dy);
    if constexpr (std::is_same_v<T, float>) {
      switch (backward_weight_algorithm(s)) {
        case ConvAlgorithm::Winograd: return conv2d_backward_weight_winograd(s, xs, dys, static_cast<T*>(dweight));
        case ConvAlgorithm::Direct: return conv2d_backward_weight_direct(s, xs, dys, static_cast<T*>(dweight));
        case ConvAlgorithm::DirectPixelLanes:
          return conv2d_backward_weight_pixel_lanes(s, xs, dys, static_cast<T*>(dweight));
        case ConvAlgorithm::DepthwiseBlocked:
          return conv2d_backward_weight_depthwise_blocked(s, xs, dys, static_cast<T*>(dweight));
        default: break;
      }
    }
    if (is_depthwise(s)) conv2d_backward_weight_depthwise_rows(s, xs, dys, static_cast<T*>(dweight));
    else backward_weight_gemm(s, xs, dys, static_cast<T*>(dweight));
  }, "conv2d_backward_weight");
}

}  // namespace shrink::kernels::cpu
