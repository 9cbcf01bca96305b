// Private to the CPU GEMM (gemm.cpp, gemm_pack.cpp): blocking constants and packing routines.
#pragma once
#include <cstdint>

namespace shrink::kernels::cpu::gemm_detail {

// Register block: 6 rows x 16 columns = 12 ymm accumulators, leaving 4 registers for the two
// B vectors and the A broadcasts. 12 independent FMA chains cover the FMA latency (4 cycles)
// times the two FMA pipes with room to spare.
inline constexpr std::int64_t kMR = 6;
inline constexpr std::int64_t kNR = 16;

// Cache blocks. A B micro-panel (kKC x kNR, 16 KiB) stays in L1 while the kernel streams the
// A block (kMC x kKC, 144 KiB) out of L2; the B block (kKC x kNC, ~4 MiB) lives in L3.
inline constexpr std::int64_t kKC = 256;
inline constexpr std::int64_t kMC = 144;   // multiple of kMR
inline constexpr std::int64_t kNC = 4080;  // multiple of kNR

// Packs one panel of `width` (kMR or kNR) lines over `kc` steps of k into dst[p * width + i],
// scaled by alpha. Only `valid` <= width lines exist in the source; the rest are zero so the
// micro-kernel never needs an edge case. Element (i, p) of the source is
// src[i * ld + p] when k_contiguous, else src[p * ld + i].
void pack_panel_a(const float* src, std::int64_t ld, bool k_contiguous, std::int64_t valid,
                  std::int64_t kc, float alpha, float* dst);  // width kMR
void pack_panel_b(const float* src, std::int64_t ld, bool k_contiguous, std::int64_t valid,
                  std::int64_t kc, float* dst);  // width kNR, no scaling


// C[0:rows, 0:cols] = beta C + A B over kc steps for one packed A panel (kc x kMR, as
// pack_panel_a lays it out) and one packed B panel (kc x kNR, 32-byte aligned); rows <= kMR,
// cols <= kNR. beta == 0 never reads C. The sgemm driver and the convolutions that pack their
// own operands (conv_winograd.cpp) share it.
void multiply_panels(std::int64_t kc, const float* a, const float* b, float* c, std::int64_t ldc,
                     std::int64_t rows, std::int64_t cols, float beta);

}  // namespace shrink::kernels::cpu::gemm_detail
