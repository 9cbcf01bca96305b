// The pieces of fused attention shared by kernels/cpu/attention.cpp and
// kernels/cuda/attention.cu (the loops around them differ: blocks of queries and keys on the
// CPU, a warp per query or key row on the GPU). Notation (FlashAttention, Dao et al. 2022):
// s_ij = scale q_i . k_j + mask_ij, lse_i = log sum_j exp(s_ij), p_ij = exp(s_ij - lse_i),
// out_i = sum_j p_ij v_j; backward with delta_i = dout_i . out_i:
//   dv_j = sum_i p_ij dout_i,  ds_ij = p_ij (dout_i . v_j - delta_i),
//   dq_i = scale sum_j ds_ij k_j,  dk_j = scale sum_i ds_ij q_i.
#pragma once
#include <cstdint>

#include "kernels/formulas/hd.h"
#include "kernels/formulas/math.h"
#include "kernels/kernel_types.h"

namespace shrink::kernels::formulas {

// Offset of row `row` of problem p = o * inner + h in a tensor laid out as `l`.
SHRINK_HD std::int64_t attention_row(const AttentionLayout& l, std::int64_t inner, std::int64_t p,
                                     std::int64_t row) {
  return (p / inner) * l.outer + (p % inner) * l.inner + row * l.row;
}

// Offset of the mask row of query i in problem p (add j * s.mask_col for key j).
SHRINK_HD std::int64_t attention_mask_row(const AttentionShape& s, std::int64_t p, std::int64_t i) {
  return (p / s.inner) * s.mask_outer + (p % s.inner) * s.mask_inner + i * s.mask_row;
}

// The running statistics of one score row seen a block of keys at a time (the online
// softmax, Milakov & Gimelshein 2018): max m and sum l of exp(s - m). Folding in a block
// whose maximum is `block_max` returns the factor exp(m_old - m_new) by which the sum and
// the output accumulated so far must be rescaled; the caller then adds the block's
// exp(s - m) to l.
template <class T>
struct OnlineSoftmax {
  T m, l;
  SHRINK_HD T rescale_for(T block_max) {
    const T m_new = block_max > m ? block_max : m;
    // exp(-inf) = 0 on the first block; an unchanged max (-inf included) rescales by 1, so a
    // block of keys all masked with -inf adds nothing instead of NaN.
    const T factor = m_new == m ? T(1) : m_exp(m - m_new);
    m = m_new;
    l *= factor;
    return factor;
  }
  SHRINK_HD T log_sum_exp() const { return m + m_log(l); }
};

// ds_ij / scale folded: the gradient of the score, times scale, ready to multiply k_j (for
// dq_i) or q_i (for dk_j).
template <class T>
SHRINK_HD T attention_dscore(T p, T dp, T delta, T scale) {
  return p * (dp - delta) * scale;
}

}  // namespace shrink::kernels::formulas
