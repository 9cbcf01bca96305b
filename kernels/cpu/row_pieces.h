// Threads a loop over the rows of a strided operation with long rows cut into pieces (one row
// of n elements for a flat loop such as the vectorised GELU).
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/cpu_backend.h"

namespace shrink::kernels::cpu {

// Elements per piece of a long row: large enough to amortise a row's offset arithmetic, small
// enough that a contiguous operation collapsed to one row (a same-shape add, a clone) is still
// shared by every thread — the residual add of each ResNet block ran on one thread while the
// others waited.
constexpr std::int64_t kRowPiece = 4096;

// Calls f(r, begin, length) for every row r < rows cut into pieces [begin, begin + length) of
// at most kRowPiece elements; threaded when the work is above kParallelGrain.
template <class F>
void for_each_row_piece(std::int64_t rows, std::int64_t row, F&& f) {
  const std::int64_t pieces = (row + kRowPiece - 1) / kRowPiece;  // per row
  const std::int64_t tasks = rows * pieces;
#pragma omp parallel for schedule(static) if (rows * row > kParallelGrain && tasks > 1)
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t begin = (t % pieces) * kRowPiece;
    f(t / pieces, begin, std::min(kRowPiece, row - begin));
  }
}

}  // namespace shrink::kernels::cpu
