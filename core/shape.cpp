#include "core/shape.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace shrink {

std::int64_t numel(const Shape& shape) {
  // The product of the non-zero dims must fit: a zero dim makes the tensor empty, but
  // strides (the partial products) are still formed from the others.
  std::int64_t n = 1;
  bool empty = false;
  for (auto d : shape) {
    SHRINK_CHECK(d >= 0, "numel: negative dimension in shape ", shape_str(shape));
    if (d == 0) empty = true;
    else SHRINK_CHECK(!__builtin_mul_overflow(n, d, &n), "numel: shape ", shape_str(shape),
                      " has more elements than a 64-bit count holds");
  }
  return empty ? 0 : n;
}

std::size_t byte_size(const Shape& shape, std::size_t element_bytes) {
  const auto n = static_cast<std::uint64_t>(numel(shape));
  std::uint64_t bytes = 0;
  SHRINK_CHECK(!__builtin_mul_overflow(n, element_bytes, &bytes) &&
                   bytes <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
               "byte_size: shape ", shape_str(shape), " of ", element_bytes,
               "-byte elements needs more bytes than a 64-bit size holds");
  return static_cast<std::size_t>(bytes);
}

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

int normalize_axis(const char* op, std::int64_t axis, std::int64_t ndim) {
  const std::int64_t a = axis < 0 ? axis + ndim : axis;
  SHRINK_CHECK(a >= 0 && a < ndim, op, ": axis ", axis, " is out of range for a tensor with ",
               ndim, " dimensions");
  return static_cast<int>(a);
}

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const std::int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const std::int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    SHRINK_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ",
                 shape_str(b), " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::vector<std::int64_t> contiguous_strides(const Shape& shape) {
  std::vector<std::int64_t> s(shape.size());
  std::int64_t acc = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

std::int64_t prod(const Shape& shape, int begin, int end) {
  std::int64_t p = 1;
  for (int i = begin; i < end; ++i)
    SHRINK_CHECK(!__builtin_mul_overflow(p, shape[i], &p), "prod: dims [", begin, ", ", end,
                 ") of shape ", shape_str(shape), " overflow a 64-bit count");
  return p;
}

std::string index_str(const Shape& shape, std::int64_t flat) {
  std::vector<std::int64_t> idx(shape.size());
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  std::string s = "[";
  for (std::size_t i = 0; i < idx.size(); ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + "]";
}

}  // namespace shrink
