// shrink::Error: the one exception type for bad input. Messages name the op and the
// offending shapes or values so a user can fix the call without reading our code.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

#include "kernels/error.h"

namespace shrink {

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append(os, rest...);
}
}  // namespace detail

// Builds the message from any streamable pieces: SHRINK_CHECK(a == b, "matmul: ", ...).
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw Error(os.str());
}

}  // namespace shrink

#define SHRINK_CHECK(cond, ...)      \
  do {                               \
    if (!(cond)) ::shrink::fail(__VA_ARGS__); \
  } while (0)
