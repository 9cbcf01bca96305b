// Shapes and the small arithmetic on them that ops share (numel, broadcasting, axes).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace shrink {

using Shape = std::vector<std::int64_t>;

std::int64_t numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "(2, 3, 4)"
// Resolves a possibly negative axis against `ndim`; throws naming `op` when out of range.
int normalize_axis(const char* op, std::int64_t axis, std::int64_t ndim);
// NumPy broadcasting of two shapes; throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// Row-major contiguous strides in elements.
std::vector<std::int64_t> contiguous_strides(const Shape& shape);
// Product of dims in [begin, end).
std::int64_t prod(const Shape& shape, int begin, int end);

}  // namespace shrink
