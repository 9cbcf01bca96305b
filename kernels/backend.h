// The one compute interface. Every device implements `Backend`; ops in core/ call
// `kernels::backend(device)` and never know which implementation runs (ggml-style).
// The kernels themselves are declared once, in kernels/kernel_list.h: each becomes a
// virtual method here whose default throws Unsupported("kernel 'x' is not implemented on
// <device>"), and an override declaration in each backend that provides it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/dtype_dispatch.h"
#include "kernels/error.h"
#include "kernels/kernel_types.h"
#include "kernels/types.h"

namespace shrink::kernels {

class Backend {
 public:
  virtual ~Backend() = default;
  // The device's name as users write it ("cpu", "cuda"); error messages quote it.
  virtual const char* name() const = 0;

  // ---- memory ----
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* ptr, std::size_t bytes) = 0;
  virtual void copy_from_host(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void synchronize() {}

  // ---- kernels (kernels/kernel_list.h) ----
#define SHRINK_KERNEL(kernel, params, args) \
  virtual void kernel params {              \
    ignore_arguments args;                  \
    unsupported(#kernel);                   \
  }
#include "kernels/kernel_list.h"

 protected:
  // Throws Unsupported("kernel '<kernel>' is not implemented on <device>").
  [[noreturn]] void unsupported(const char* kernel) const {
    throw Unsupported(std::string("kernel '") + kernel + "' is not implemented on " + name());
  }

 private:
  template <class... A>
  static void ignore_arguments(const A&...) {}
};

// The one dispatch point: the backend that runs on `device`. Throws Unsupported when the
// build has no such backend (a CPU-only build asked for CUDA).
Backend& backend(DeviceType device);

// True when this build has the CUDA backend and a GPU is present.
bool cuda_available();

}  // namespace shrink::kernels
