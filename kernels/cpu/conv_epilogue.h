// conv2d's epilogue on the CPU (kernels/kernel_types.h ConvEpilogue): y = act(y + residual) on
// output elements as a kernel writes them, so a residual block's add and its activation cost
// no passes of their own over the output. Every value is the separate ops' value: the add
// rounded first, then formulas/unary.h's ReLU or ReLU6 (NaN and -0 included; the vector form
// below orders its max/min operands so that it agrees).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/formulas/unary.h"
#include "kernels/kernel_types.h"

namespace shrink::kernels::cpu {

// y[i] = act(y[i] + r[i]) for i in [0, n); r is the residual at y's offset, or null.
template <class T>
void apply_epilogue(const ConvEpilogue& post, const T* r, T* y, std::int64_t n) {
  if (r) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) y[i] = y[i] + r[i];
  }
  if (!post.activate) return;
  if (post.activation == UnaryOp::Relu) {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) y[i] = formulas::unary_value<UnaryOp::Relu>(y[i], T(0));
  } else {
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) y[i] = formulas::unary_value<UnaryOp::Relu6>(y[i], T(0));
  }
}

// The residual element at output offset `at` (null when there is none).
template <class T>
const T* residual_at(const ConvEpilogue& post, std::int64_t at) {
  return post.residual ? static_cast<const T*>(post.residual) + at : nullptr;
}

// The epilogue as compile-time choices, for loops that must not re-read ConvEpilogue's fields
// per element (a store through a float* may alias them, so the compiler would reload them).
enum class EpilogueAct { None, Relu, Relu6 };
inline EpilogueAct epilogue_act(const ConvEpilogue& post) {
  if (!post.activate) return EpilogueAct::None;
  return post.activation == UnaryOp::Relu ? EpilogueAct::Relu : EpilogueAct::Relu6;
}

// Calls f.template operator()<Add, Act>() with post's choices as template arguments.
template <class F>
void with_epilogue(const ConvEpilogue& post, F&& f) {
  const bool add = post.residual != nullptr;
  switch (epilogue_act(post)) {
    case EpilogueAct::None: return add ? f.template operator()<true, EpilogueAct::None>()
                                       : f.template operator()<false, EpilogueAct::None>();
    case EpilogueAct::Relu: return add ? f.template operator()<true, EpilogueAct::Relu>()
                                       : f.template operator()<false, EpilogueAct::Relu>();
    case EpilogueAct::Relu6: return add ? f.template operator()<true, EpilogueAct::Relu6>()
                                        : f.template operator()<false, EpilogueAct::Relu6>();
  }
}

// Eight floats v about to be stored where the residual r sits (read only when Add).
// _mm256_max_ps(a, b) returns b when either is NaN and when both are zeros: max(v, 0) gives
// ReLU's 0 for NaN and +0 for -0; ReLU6 takes max(0, v) then min(6, .), which keep NaN and -0
// as formulas/unary.h's comparisons do.
template <bool Add, EpilogueAct Act>
inline __m256 epilogue8(__m256 v, __m256 r) {
  if constexpr (Add) v = _mm256_add_ps(v, r);
  if constexpr (Act == EpilogueAct::Relu) return _mm256_max_ps(v, _mm256_setzero_ps());
  if constexpr (Act == EpilogueAct::Relu6) return _mm256_min_ps(_mm256_set1_ps(6.0f), _mm256_max_ps(_mm256_setzero_ps(), v));
  return v;
}

// The same on four floats, and on one value (a row's last partial tile; float64's loops).
template <bool Add, EpilogueAct Act>
inline __m128 epilogue4(__m128 v, __m128 r) {
  if constexpr (Add) v = _mm_add_ps(v, r);
  if constexpr (Act == EpilogueAct::Relu) return _mm_max_ps(v, _mm_setzero_ps());
  if constexpr (Act == EpilogueAct::Relu6) return _mm_min_ps(_mm_set1_ps(6.0f), _mm_max_ps(_mm_setzero_ps(), v));
  return v;
}
template <bool Add, EpilogueAct Act, class T>
inline T epilogue1(T v, T r) {
  if constexpr (Add) v = v + r;
  if constexpr (Act == EpilogueAct::Relu) return formulas::unary_value<UnaryOp::Relu>(v, T(0));
  if constexpr (Act == EpilogueAct::Relu6) return formulas::unary_value<UnaryOp::Relu6>(v, T(0));
  return v;
}

}  // namespace shrink::kernels::cpu
