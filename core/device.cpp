#include "core/device.h"

#include "core/error.h"
#include "kernels/backend.h"

namespace shrink {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string index = text.substr(5);
    if (!index.empty() && index.find_first_not_of("0123456789") == std::string::npos)
      return cuda(std::stoi(index));
  }
  fail("device: unknown device '", text, "' (valid: cpu, cuda, cuda:N)");
}

bool cuda_available() { return kernels::cuda_available(); }

void synchronize(Device device) {
  try {
    kernels::backend(device.type).synchronize();
  } catch (const kernels::Unsupported& e) {
    throw Error(e.what());
  }
}

}  // namespace shrink
