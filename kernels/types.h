// Element types and device kinds: the vocabulary shared by kernels/ and everything above it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace shrink {

enum class DType : std::uint8_t { Float32, Float64, Int64 };

inline std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Float64: return 8;
    case DType::Int64: return 8;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int64: return "int64";
  }
  return "?";
}

enum class DeviceType : std::uint8_t { CPU, CUDA };

}  // namespace shrink
