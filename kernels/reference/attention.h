// Reference scaled dot-product attention, the textbook way in double: for each batch b and
// query i, s_j = scale * q_i . k_j + mask_ij, p = softmax(s) (max subtracted), out_i = sum_j p_j v_j.
// The oracle for the attention op and the fused attention kernels.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace shrink::kernels::reference {

// q (batch, tq, d), k (batch, tk, d), v (batch, tk, dv), mask (batch, tq, tk) additive or null,
// out (batch, tq, dv).
template <class T>
void attention(std::int64_t batch, std::int64_t tq, std::int64_t tk, std::int64_t d, std::int64_t dv,
               double scale, const T* q, const T* k, const T* v, const T* mask, T* out) {
  std::vector<double> s(static_cast<size_t>(tk));
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t i = 0; i < tq; ++i) {
      const T* qi = q + (b * tq + i) * d;
      double top = -INFINITY;
      for (std::int64_t j = 0; j < tk; ++j) {
        const T* kj = k + (b * tk + j) * d;
        double dot = 0;
        for (std::int64_t c = 0; c < d; ++c) dot += static_cast<double>(qi[c]) * static_cast<double>(kj[c]);
        s[j] = scale * dot + (mask ? static_cast<double>(mask[(b * tq + i) * tk + j]) : 0.0);
        top = std::max(top, s[j]);
      }
      double total = 0;
      for (std::int64_t j = 0; j < tk; ++j) total += (s[j] = std::exp(s[j] - top));
      for (std::int64_t c = 0; c < dv; ++c) {
        double acc = 0;
        for (std::int64_t j = 0; j < tk; ++j) acc += s[j] * static_cast<double>(v[(b * tk + j) * dv + c]);
        out[(b * tq + i) * dv + c] = static_cast<T>(acc / total);
      }
    }
}

}  // namespace shrink::kernels::reference
