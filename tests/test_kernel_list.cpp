// The kernel list (kernels/kernel_list.h): a backend that lacks a kernel throws
// kernels::Unsupported naming the kernel and the device; the dtype dispatch rejects int64
// for floating-point kernels by name; and the CPU backend provides every listed kernel.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/dtype_dispatch.h"

namespace shrink::kernels {
namespace {

// A device with memory but no kernels: every listed kernel keeps Backend's default.
class BareBackend final : public Backend {
 public:
  const char* name() const override { return "bare-test-device"; }
  void* allocate(std::size_t) override { return nullptr; }
  void deallocate(void*, std::size_t) override {}
  void copy_from_host(void*, const void*, std::size_t) override {}
  void copy_to_host(void*, const void*, std::size_t) override {}
  void copy(void*, const void*, std::size_t) override {}
};

std::string message_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Unsupported& e) {
    return e.what();
  }
  return "(no Unsupported thrown)";
}

TEST(KernelList, MissingKernelThrowsUnsupportedNamingKernelAndDevice) {
  BareBackend bare;
  float x = 1, y = 0;
  EXPECT_EQ(message_of([&] { bare.unary(UnaryOp::Exp, DType::Float32, 1, 0, &x, &y); }),
            "kernel 'unary' is not implemented on bare-test-device");
  std::int64_t idx = 0;
  EXPECT_EQ(message_of([&] { bare.gather(DType::Float32, 1, 1, 1, &x, 1, &idx, &y); }),
            "kernel 'gather' is not implemented on bare-test-device");
  EXPECT_EQ(message_of([&] {
              bare.csr_linear(DType::Float32, 1, 1, 1, &idx, &idx, &x, &x, nullptr, &y);
            }),
            "kernel 'csr_linear' is not implemented on bare-test-device");
  // Unsupported is a shrink::Error, so callers catching the one exception type see it.
  EXPECT_THROW(bare.fill(DType::Float32, 1, 0.0, &y), Error);
  EXPECT_EQ(y, 0.0f);  // the default wrote nothing
}

// Every kernel of the list runs on the CPU: the list and CpuBackend cannot drift apart
// (a missing definition would not link), and none of them falls back to the default.
TEST(KernelList, CpuBackendProvidesListedKernels) {
  Backend& cpu = backend(DeviceType::CPU);
  std::vector<float> in = {1, 2, 3, 4}, out(4, 0);
  cpu.fill(DType::Float32, 4, 2.5, out.data());
  EXPECT_EQ(out[3], 2.5f);
  const std::vector<std::int64_t> idx = {1, 0, 1, 1};
  EXPECT_NO_THROW(cpu.gather(DType::Float32, 1, 4, 1, in.data(), 4, idx.data(), out.data()));
  EXPECT_EQ(out, (std::vector<float>{2, 1, 2, 2}));
  const std::vector<std::int64_t> row_ptr = {0, 1}, col_idx = {2};
  const std::vector<float> values = {3};
  float y = 0;
  EXPECT_NO_THROW(cpu.csr_linear(DType::Float32, 1, 1, 4, row_ptr.data(), col_idx.data(),
                                 values.data(), in.data(), nullptr, &y));
  EXPECT_EQ(y, 9.0f);  // 3 * x[2]
}

TEST(KernelList, DispatchRejectsInt64ForFloatingKernelsByName) {
  Backend& cpu = backend(DeviceType::CPU);
  std::vector<std::int64_t> a = {1}, out = {0};
  try {
    cpu.scatter_add(DType::Int64, 1, 1, 1, 1, a.data(), a.data(), out.data());
    FAIL() << "int64 scatter_add did not throw";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("scatter_add"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("int64"), std::string::npos) << e.what();
  }
  int seen = 0;
  dispatch_all(DType::Int64, [&](auto zero) { seen = sizeof(zero) == 8 ? 64 : 0; });
  EXPECT_EQ(seen, 64);
  dispatch_floating(DType::Float32, [&](auto zero) { seen = sizeof(zero) * 8; });
  EXPECT_EQ(seen, 32);
}

}  // namespace
}  // namespace shrink::kernels
