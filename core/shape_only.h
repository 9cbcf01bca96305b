// ShapeOnlyGuard: runs the ops of its scope without their compute kernels
// (kernels/shape_only.h says what still happens). For graph and shape discovery only:
// no value computed inside the scope may be read.
#pragma once
#include "kernels/shape_only.h"

namespace shrink {

class ShapeOnlyGuard {
 public:
  ShapeOnlyGuard() : previous_(kernels::set_shape_only(true)) {}
  ~ShapeOnlyGuard() { kernels::set_shape_only(previous_); }
  ShapeOnlyGuard(const ShapeOnlyGuard&) = delete;
  ShapeOnlyGuard& operator=(const ShapeOnlyGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace shrink
