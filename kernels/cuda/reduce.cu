// Sum and max (with first-index argmax) over the middle axis of (outer, reduce, inner).
// Rows (inner == 1) reduce with a warp or a block per row; few long rows are split into
// chunks whose partial results a second pass combines in chunk order. Columns (inner > 1)
// use one thread per output walking r in order, which is the CPU's own summation order.
// No atomics anywhere: the result depends only on the shapes and the GPU's SM count.
#include <cuda_runtime.h>

#include "kernels/cuda/cuda_backend_impl.h"
#include "kernels/cuda/row_reduce.cuh"

namespace shrink::kernels::cuda {

namespace {

template <class T>
struct SumRow {
  using Acc = rows::SumAcc<T>;
  static __device__ void push(Acc& a, T x, std::int64_t) { a.v += x; }
  static __device__ void write(const Acc& a, T* out, std::int64_t*, std::int64_t at) {
    out[at] = a.v;
  }
};

// The CPU scans r in order and replaces the best on `v > best || r == 0`: the result is the
// first maximum, NaNs are skipped unless the row starts with one (then that NaN wins).
// `i < 0` marks "no element seen"; combine is a max over (NaN at 0, value, -index), so it
// is associative and commutative and any tree order reproduces the scan.
template <class T>
struct ArgMaxAcc {
  T v;
  long long i;
  static __device__ ArgMaxAcc identity() { return {rows::neg_inf<T>(), -1}; }
  static __device__ ArgMaxAcc combine(ArgMaxAcc a, ArgMaxAcc b) {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    if (a.v != a.v) return a;  // a NaN is only ever kept at index 0
    if (b.v != b.v) return b;
    if (b.v > a.v) return b;
    if (a.v > b.v) return a;
    return a.i < b.i ? a : b;
  }
  static __device__ ArgMaxAcc shfl_xor(ArgMaxAcc a, int m) {
    return {__shfl_xor_sync(rows::kFullMask, a.v, m), __shfl_xor_sync(rows::kFullMask, a.i, m)};
  }
};

template <class T>
struct MaxRow {
  using Acc = ArgMaxAcc<T>;
  static __device__ void push(Acc& a, T x, std::int64_t r) {
    if (x == x || r == 0) a = Acc::combine(a, Acc{x, static_cast<long long>(r)});
  }
  static __device__ void write(const Acc& a, T* out, std::int64_t* argmax, std::int64_t at) {
    out[at] = a.i < 0 ? rows::neg_inf<T>() : a.v;  // empty axis: -inf at index 0, as the CPU
    if (argmax) argmax[at] = a.i < 0 ? 0 : a.i;
  }
};

// Task t covers elements [c * chunk, min((c + 1) * chunk, reduce)) of row t / splits, with
// c = t % splits. With one split the task writes the final output, else partial[t].
template <class Op, class T, int kTpr>
__global__ void reduce_rows_kernel(const T* in, std::int64_t tasks, std::int64_t reduce,
                                   std::int64_t splits, std::int64_t chunk, T* out,
                                   std::int64_t* argmax, typename Op::Acc* partial) {
  using Acc = typename Op::Acc;
  using Loop = rows::RowLoop<kTpr>;
  __shared__ Acc scratch[32];
  const int lane = Loop::lane();
  for (std::int64_t t = Loop::first(); t < tasks; t += Loop::step()) {
    const std::int64_t row = t / splits, begin = (t % splits) * chunk;
    const std::int64_t end = begin + chunk < reduce ? begin + chunk : reduce;
    const T* src = in + row * reduce;
    Acc a = Acc::identity();
    for (std::int64_t r = begin + lane; r < end; r += kTpr) Op::push(a, src[r], r);
    a = rows::group_reduce<kTpr>(a, scratch);
    if (lane == 0) {
      if (partial) partial[t] = a;
      else Op::write(a, out, argmax, t);
    }
  }
}

// Second pass: one thread per row folds its partials in chunk order.
template <class Op, class T>
__global__ void reduce_partials_kernel(const typename Op::Acc* partial, std::int64_t outer,
                                       std::int64_t splits, T* out, std::int64_t* argmax) {
  using Acc = typename Op::Acc;
  for (std::int64_t row = grid_start(); row < outer; row += grid_step()) {
    Acc a = partial[row * splits];
    for (std::int64_t c = 1; c < splits; ++c) a = Acc::combine(a, partial[row * splits + c]);
    Op::write(a, out, argmax, row);
  }
}

template <class T>
__global__ void sum_columns_kernel(std::int64_t outer, std::int64_t reduce, std::int64_t inner,
                                   const T* in, T* out) {
  const std::int64_t n = outer * inner;
  for (std::int64_t k = grid_start(); k < n; k += grid_step()) {
    const std::int64_t o = k / inner, i = k % inner;
    const T* src = in + o * reduce * inner + i;
    T acc = T(0);
    for (std::int64_t r = 0; r < reduce; ++r) acc += src[r * inner];
    out[k] = acc;
  }
}

template <class T>
__global__ void max_columns_kernel(std::int64_t outer, std::int64_t reduce, std::int64_t inner,
                                   const T* in, T* out, std::int64_t* argmax) {
  const std::int64_t n = outer * inner;
  for (std::int64_t k = grid_start(); k < n; k += grid_step()) {
    const std::int64_t o = k / inner, i = k % inner;
    const T* src = in + o * reduce * inner + i;
    T best = rows::neg_inf<T>();
    std::int64_t best_at = 0;
    for (std::int64_t r = 0; r < reduce; ++r) {
      const T v = src[r * inner];
      if (v > best || r == 0) {  // the CPU's rule, verbatim
        best = v;
        best_at = r;
      }
    }
    out[k] = best;
    if (argmax) argmax[k] = best_at;
  }
}

int multiprocessor_count() {
  static const int count = [] {
    int device = 0, sms = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
          "cudaDeviceGetAttribute(multiprocessor count)");
    return sms > 0 ? sms : 1;
  }();
  return count;
}

template <class Op, class T>
void reduce_rows(std::int64_t outer, std::int64_t reduce, const T* in, T* out,
                 std::int64_t* argmax) {
  using Acc = typename Op::Acc;
  cudaStream_t s = stream();
  // Fewer rows than the GPU has room for, and long ones: split them so every SM works.
  constexpr std::int64_t kMinChunk = 16384;
  const std::int64_t want_tasks = 4 * std::int64_t(multiprocessor_count());
  std::int64_t splits = 1;
  if (outer < want_tasks && reduce >= 2 * kMinChunk) {
    splits = (want_tasks + outer - 1) / outer;
    if (splits > reduce / kMinChunk) splits = reduce / kMinChunk;
  }
  if (splits <= 1) {
    rows::launch_rows(outer, reduce, [&](auto tpr, unsigned grid, unsigned block) {
      reduce_rows_kernel<Op, T, decltype(tpr)::value><<<grid, block, 0, s>>>(
          in, outer, reduce, 1, reduce, out, argmax, nullptr);
    });
    check_launch("reduce (rows)");
    return;
  }
  const std::int64_t chunk = (reduce + splits - 1) / splits;
  splits = (reduce + chunk - 1) / chunk;  // no empty trailing chunk
  Acc* partial = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&partial), sizeof(Acc) * outer * splits, s),
        "cudaMallocAsync(reduce partials)");
  constexpr int kTpr = rows::kBlockRowThreads;
  reduce_rows_kernel<Op, T, kTpr><<<rows::row_blocks(outer * splits, 1), kTpr, 0, s>>>(
      in, outer * splits, reduce, splits, chunk, nullptr, nullptr, partial);
  check_launch("reduce (row chunks)");
  reduce_partials_kernel<Op, T><<<blocks_for(outer), kThreadsPerBlock, 0, s>>>(partial, outer,
                                                                               splits, out, argmax);
  check_launch("reduce (chunk partials)");
  check(cudaFreeAsync(partial, s), "cudaFreeAsync(reduce partials)");
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, DType t, std::int64_t outer, std::int64_t reduce,
                         std::int64_t inner, const void* in, void* out, std::int64_t* argmax) {
  if (outer <= 0 || inner <= 0) return;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* src = static_cast<const T*>(in);
    T* dst = static_cast<T*>(out);
    if (inner == 1) {
      if (op == ReduceOp::Sum) reduce_rows<SumRow<T>>(outer, reduce, src, dst, nullptr);
      else reduce_rows<MaxRow<T>>(outer, reduce, src, dst, argmax);
      return;
    }
    const unsigned blocks = blocks_for(outer * inner);
    if (op == ReduceOp::Sum)
      sum_columns_kernel<<<blocks, kThreadsPerBlock, 0, stream()>>>(outer, reduce, inner, src, dst);
    else
      max_columns_kernel<<<blocks, kThreadsPerBlock, 0, stream()>>>(outer, reduce, inner, src, dst,
                                                                    argmax);
    check_launch("reduce (columns)");
  });
}

}  // namespace shrink::kernels::cuda
