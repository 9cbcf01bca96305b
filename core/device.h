// Device: where a tensor's storage lives. Part of every tensor from day one.
#pragma once
#include <string>

#include "kernels/types.h"

namespace shrink {

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  std::string str() const {
    return type == DeviceType::CPU ? "cpu" : "cuda:" + std::to_string(index);
  }
  // Parses "cpu", "cuda" or "cuda:N"; throws shrink::Error on anything else.
  static Device parse(const std::string& text);
};

// True when the build has the CUDA backend and a GPU is present.
bool cuda_available();

// Waits until every operation queued on `device` has finished (a no-op on the CPU, whose
// kernels return when done): what a timer needs before it reads the clock.
void synchronize(Device device);

}  // namespace shrink
