// Fused optimizer updates, one element at a time, shared by kernels/cpu/optim.cpp and
// kernels/cuda/optim.cu. The scalar factors are formed once per call on the host, in double,
// then rounded to the parameter's precision, identically for both backends.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/formulas/hd.h"
#include "kernels/formulas/math.h"
#include "kernels/kernel_types.h"

namespace shrink::kernels::formulas {

template <class T>
struct SgdScalars {
  T lr, wd, mom, damp;
  bool use_buf, first_step, nesterov;

  static SgdScalars from(const SgdParams& p, bool has_buffer) {
    return {T(p.lr), T(p.weight_decay), T(p.momentum), T(1 - p.dampening),
            p.momentum != 0 && has_buffer, p.first_step, p.nesterov};
  }
};

// PyTorch's SGD: g += wd * w; buf = momentum * buf + (1 - dampening) * g (buf = g on the
// first step); step = nesterov ? g + momentum * buf : buf; w -= lr * step.
// kUseBuf (= p.use_buf) is a template parameter so that the CPU loop has no branch on it and
// vectorises; `buf` is touched only when it is true.
template <bool kUseBuf, class T>
SHRINK_HD void sgd_update(SgdScalars<T> p, std::int64_t i, T* w, const T* g, T* buf) {
  const T wi = w[i];
  T gi = g[i] + p.wd * wi;
  if constexpr (kUseBuf) {
    const T b = p.first_step ? gi : p.mom * buf[i] + p.damp * gi;
    buf[i] = b;
    gi = p.nesterov ? gi + p.mom * b : b;
  }
  w[i] = wi - p.lr * gi;
}

template <class T>
struct AdamWScalars {
  T b1, b2, eps, decay, step_size, inv_sqrt_bc2;

  static AdamWScalars from(const AdamWParams& p) {
    const double bc1 = 1 - std::pow(p.beta1, static_cast<double>(p.step));
    const double bc2 = 1 - std::pow(p.beta2, static_cast<double>(p.step));
    return {T(p.beta1), T(p.beta2), T(p.eps), T(1 - p.lr * p.weight_decay), T(p.lr / bc1),
            T(1 / std::sqrt(bc2))};
  }
};

// AdamW (Loshchilov & Hutter 2019): decoupled decay w *= 1 - lr*wd, then the Adam step with
// bias-corrected moments: w -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
template <class T>
SHRINK_HD void adamw_update(AdamWScalars<T> p, std::int64_t i, T* w, const T* g, T* m,
                            T* v) {
  const T gi = g[i];
  const T mi = p.b1 * m[i] + (T(1) - p.b1) * gi;
  const T vi = p.b2 * v[i] + (T(1) - p.b2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  w[i] = w[i] * p.decay - p.step_size * mi / (m_sqrt(vi) * p.inv_sqrt_bc2 + p.eps);
}

}  // namespace shrink::kernels::formulas
