// The broadcasting binary ops' per-element formula, shared by the CPU and CUDA kernels.
#pragma once
#include "kernels/formulas/hd.h"
#include "kernels/kernel_types.h"

namespace shrink::kernels::formulas {

template <BinaryOp Op, class T>
SHRINK_HD T binary_value(T a, T b) {
  if constexpr (Op == BinaryOp::Add) return a + b;
  else if constexpr (Op == BinaryOp::Sub) return a - b;
  else if constexpr (Op == BinaryOp::Mul) return a * b;
  else if constexpr (Op == BinaryOp::Div) return a / b;
  else {
    const T s = a + b;  // AddRelu, rounded as add then relu
    return s > T(0) ? s : T(0);
  }
}

}  // namespace shrink::kernels::formulas
