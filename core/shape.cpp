#include "core/shape.h"

#include <algorithm>

#include "core/error.h"

namespace shrink {

std::int64_t numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
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
  for (int i = begin; i < end; ++i) p *= shape[i];
  return p;
}

}  // namespace shrink
