// Integer helpers for cutting work into tiles and panels, and the size at which the kernels of
// kernels/cpu hand work to OpenMP. Internal to kernels/cpu.
#pragma once
#include <cstdint>

namespace shrink::kernels::cpu {

constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
constexpr std::int64_t round_up(std::int64_t a, std::int64_t b) { return ceil_div(a, b) * b; }

// Multiply-adds (direct count) below which a convolution runs on the calling thread: forking a
// team costs a few microseconds, the work of about this many multiply-adds on one core.
inline constexpr std::int64_t kConvParallelWork = 64 * 64 * 64;

}  // namespace shrink::kernels::cpu
