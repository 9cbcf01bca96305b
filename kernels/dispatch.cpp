// The one place where a device becomes a backend.
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"

#ifdef SHRINK_WITH_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace shrink::kernels {

Backend& backend(DeviceType device) {
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

bool cuda_available() {
#ifdef SHRINK_WITH_CUDA
  return cuda::device_count() > 0;
#else
  return false;
#endif
}

}  // namespace shrink::kernels
