// shrink::Error: the one exception type for bad input and unavailable operations. It
// lives at the bottom of the dependency chain so kernels can throw it too; core/error.h
// adds the message-building helpers.
#pragma once
#include <stdexcept>
#include <string>

namespace shrink {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace shrink
