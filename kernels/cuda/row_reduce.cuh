// Private to kernels/cuda (reduce.cu, softmax.cu): deterministic warp and block reductions
// over small accumulator structs, the row launch geometry, and float/double math overloads.
//
// Every reduction combines in a fixed butterfly order that depends only on the launch
// shape, never on timing, so the same input gives the same bits on every run (no atomics).
// An accumulator is a plain aggregate (it may live in __shared__) with
//   static Acc identity();  static Acc combine(Acc a, Acc b);  static Acc shfl_xor(Acc, int);
// and combine must be commutative: the xor butterfly leaves every lane with the same bits.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/formulas/math.h"

namespace shrink::kernels::cuda::rows {

constexpr int kWarp = 32;
constexpr unsigned kFullMask = 0xffffffffu;

template <class T> __device__ __forceinline__ T neg_inf();
template <> __device__ __forceinline__ float neg_inf<float>() { return -INFINITY; }
template <> __device__ __forceinline__ double neg_inf<double>() {
  return -static_cast<double>(INFINITY);
}

template <class T>
struct SumAcc {
  T v;
  static __device__ SumAcc identity() { return {T(0)}; }
  static __device__ SumAcc combine(SumAcc a, SumAcc b) { return {a.v + b.v}; }
  static __device__ SumAcc shfl_xor(SumAcc a, int m) {
    return {__shfl_xor_sync(kFullMask, a.v, m)};
  }
};

template <class T>
struct MaxAcc {
  T v;
  static __device__ MaxAcc identity() { return {neg_inf<T>()}; }
  static __device__ MaxAcc combine(MaxAcc a, MaxAcc b) { return {a.v > b.v ? a.v : b.v}; }
  static __device__ MaxAcc shfl_xor(MaxAcc a, int m) { return {__shfl_xor_sync(kFullMask, a.v, m)}; }
};

// Running (max, sum of exp(x - max)) for one-pass softmax statistics (Milakov & Gimelshein
// 2018, "Online normalizer calculation for softmax"). A scale of exactly 1 when the maxima
// agree keeps rows that start with -inf finite.
template <class T>
struct MaxExpSumAcc {
  T m, s;
  static __device__ MaxExpSumAcc identity() { return {neg_inf<T>(), T(0)}; }
  static __device__ MaxExpSumAcc combine(MaxExpSumAcc a, MaxExpSumAcc b) {
    const T m = a.m > b.m ? a.m : b.m;
    const T sa = a.m == m ? a.s : a.s * formulas::m_exp(a.m - m);
    const T sb = b.m == m ? b.s : b.s * formulas::m_exp(b.m - m);
    return {m, sa + sb};
  }
  static __device__ MaxExpSumAcc shfl_xor(MaxExpSumAcc a, int lane_mask) {
    return {__shfl_xor_sync(kFullMask, a.m, lane_mask), __shfl_xor_sync(kFullMask, a.s, lane_mask)};
  }
  __device__ void push(T x) {
    if (x > m) {
      s = (m == neg_inf<T>() ? T(0) : s * formulas::m_exp(m - x)) + T(1);
      m = x;
    } else {
      s += x == m ? T(1) : formulas::m_exp(x - m);
    }
  }
};

// Reduces `a` across the `kThreads` consecutive threads that share a row: kThreads is 32 (one
// warp per row) or the whole block (one row per block, blockDim.x == kThreads). Every
// participating thread returns the result. `scratch` holds one Acc per warp of the block.
template <int kThreads, class Acc>
__device__ Acc group_reduce(Acc a, Acc* scratch) {
  static_assert(kThreads == kWarp || (kThreads % kWarp == 0 && kThreads <= 1024));
#pragma unroll
  for (int m = kWarp / 2; m > 0; m >>= 1) a = Acc::combine(a, Acc::shfl_xor(a, m));
  if constexpr (kThreads > kWarp) {
    constexpr int kWarps = kThreads / kWarp;
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    if (lane == 0) scratch[warp] = a;
    __syncthreads();
    a = lane < kWarps ? scratch[lane] : Acc::identity();
#pragma unroll
    for (int m = kWarp / 2; m > 0; m >>= 1) a = Acc::combine(a, Acc::shfl_xor(a, m));
    __syncthreads();  // scratch may be reused by the caller's next reduction
  }
  return a;
}

// Threads per row for a row length: one warp for short rows, a whole block for long ones.
constexpr std::int64_t kWarpRowLimit = 1024;
constexpr int kBlockRowThreads = 512;

// Blocks for `rows` rows at `rows_per_block`, capped (kernels loop over the rest).
inline unsigned row_blocks(std::int64_t rows, int rows_per_block) {
  const std::int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
  constexpr std::int64_t kMaxBlocks = 1 << 20;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

// Calls f(std::integral_constant<int, kTpr>, grid, block) with the row geometry for `rows`
// rows of `len` elements: 8 warp-rows per 256-thread block, or one 512-thread block per row.
template <class F>
void launch_rows(std::int64_t rows, std::int64_t len, F&& f) {
  if (len <= kWarpRowLimit) {
    f(std::integral_constant<int, kWarp>{}, row_blocks(rows, 256 / kWarp), 256u);
  } else {
    f(std::integral_constant<int, kBlockRowThreads>{}, row_blocks(rows, 1),
      unsigned(kBlockRowThreads));
  }
}

// The rows a kernel's thread group visits: group g of block b starts at row b * per_block + g
// and strides over the grid. kTpr threads share a row; blockDim.x is max(kTpr, 256).
template <int kTpr>
struct RowLoop {
  static constexpr int kRowsPerBlock = (kTpr < 256 ? 256 : kTpr) / kTpr;
  static __device__ std::int64_t first() {
    return std::int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kTpr;
  }
  static __device__ std::int64_t step() { return std::int64_t(gridDim.x) * kRowsPerBlock; }
  static __device__ int lane() { return threadIdx.x % kTpr; }
};

}  // namespace shrink::kernels::cuda::rows
