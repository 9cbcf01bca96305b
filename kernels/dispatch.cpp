// The one place where a device becomes a backend.
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/shape_only.h"

#ifdef SHRINK_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace shrink::kernels {

namespace {

thread_local bool t_shape_only = false;

// The real backend's memory, no compute (kernels/shape_only.h).
class ShapeOnlyBackend final : public Backend {
 public:
  explicit ShapeOnlyBackend(Backend& real) : real_(real) {}
  const char* name() const override { return real_.name(); }
  void* allocate(std::size_t bytes) override { return real_.allocate(bytes); }
  void deallocate(void* ptr, std::size_t bytes) override { real_.deallocate(ptr, bytes); }
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override { real_.copy_from_host(dst, src, bytes); }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override { real_.copy_to_host(dst, src, bytes); }
  void copy(void* dst, const void* src, std::size_t bytes) override { real_.copy(dst, src, bytes); }
  void synchronize() override { real_.synchronize(); }

#define SHRINK_KERNEL(kernel, params, args) \
  void kernel params override { skip args; }
#define SHRINK_VALUE_CHECK_KERNEL(kernel, params, args)
#include "kernels/kernel_list.h"

  // The checks answer "nothing wrong" (n) without reading: their input may be a value this
  // mode never computed, and a check that fails on it would fail on nothing real.
  void find_out_of_range(std::int64_t n, const std::int64_t*, std::int64_t, std::int64_t* first_bad) override {
    real_.copy_from_host(first_bad, &n, sizeof n);
  }
  void find_nonfinite(DType, std::int64_t n, const void*, std::int64_t* first_bad) override {
    real_.copy_from_host(first_bad, &n, sizeof n);
  }

 private:
  template <class... A>
  static void skip(const A&...) {}
  Backend& real_;
};

Backend& real_backend(DeviceType device) {
  switch (device) {
    case DeviceType::CPU: {
      static cpu::CpuBackend cpu_backend;
      return cpu_backend;
    }
    case DeviceType::CUDA:
#ifdef SHRINK_WITH_CUDA
      return cuda::backend();
#else
      throw Unsupported("this build of shrink has no CUDA backend (nvcc was not found at "
                        "configure time); rebuild with -DSHRINK_CUDA=ON on a machine with nvcc");
#endif
  }
  throw Unsupported("unknown device type");
}

}  // namespace

Backend& backend(DeviceType device) {
  Backend& real = real_backend(device);
  if (!t_shape_only) return real;
  if (device == DeviceType::CPU) {
    static ShapeOnlyBackend cpu_shapes(real);
    return cpu_shapes;
  }
  static ShapeOnlyBackend cuda_shapes(real);
  return cuda_shapes;
}

bool set_shape_only(bool on) {
  const bool previous = t_shape_only;
  t_shape_only = on;
  return previous;
}

bool shape_only() { return t_shape_only; }

bool cuda_available() {
#ifdef SHRINK_WITH_CUDA
  return cuda::device_count() > 0;
#else
  return false;
#endif
}

}  // namespace shrink::kernels
