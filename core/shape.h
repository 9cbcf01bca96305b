// Shapes and the small arithmetic on them that ops share (numel, broadcasting, axes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace shrink {

using Shape = std::vector<std::int64_t>;

// Element count; throws shrink::Error naming the shape for a negative dim or when the
// product of the non-zero dims overflows int64 (so every stride of the shape fits too).
std::int64_t numel(const Shape& shape);
// numel(shape) * element_bytes; throws naming the shape when it exceeds INT64_MAX bytes.
std::size_t byte_size(const Shape& shape, std::size_t element_bytes);
std::string shape_str(const Shape& shape);  // "(2, 3, 4)"
// The multi-index of row-major position `flat` in `shape`: "[1, 0, 3]".
std::string index_str(const Shape& shape, std::int64_t flat);
// Resolves a possibly negative axis against `ndim`; throws naming `op` when out of range.
int normalize_axis(const char* op, std::int64_t axis, std::int64_t ndim);
// NumPy broadcasting of two shapes; throws naming `op` and both shapes when incompatible.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// Row-major contiguous strides in elements.
std::vector<std::int64_t> contiguous_strides(const Shape& shape);
// Product of dims in [begin, end).
std::int64_t prod(const Shape& shape, int begin, int end);

}  // namespace shrink
