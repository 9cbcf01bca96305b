// The CPU backend's elementwise and memory kernels against kernels/reference/ on odd shapes,
// tiny sizes and sizes above the OpenMP grain (32768 elements) so the threaded paths run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/reference/elementwise.h"
#include "tests/op_table.h"
#include "tests/cpu_kernel_test.h"
#include "tests/test_helpers.h"

namespace shrink::kernels {
namespace {

// ---- binary with broadcast descriptors ----

TYPED_TEST(CpuKernels, BinaryWithBroadcastDescriptors) {
  using T = TypeParam;
  struct Desc {
    std::vector<std::int64_t> shape, sa, sb;
    std::int64_t na, nb;  // operand sizes
  };
  const std::vector<Desc> descs = {
      {{}, {}, {}, 1, 1},                                // scalar op scalar
      {{7}, {1}, {1}, 7, 7},                             // dense
      {{7}, {1}, {0}, 7, 1},                             // row op scalar
      {{7}, {0}, {1}, 1, 7},                             // scalar op row
      {{3, 5, 7}, {35, 7, 1}, {0, 1, 0}, 105, 5},        // b (5,) broadcast on axis 1
      {{3, 5, 7}, {1, 3, 15}, {35, 7, 1}, 105, 105},     // a read transposed (non-unit last stride)
      {{5, 7}, {0, 1}, {1, 0}, 7, 5},                    // outer product layout
      {{37, 1087}, {1087, 1}, {1, 0}, 37 * 1087, 37},    // threaded, column broadcast
      {{3, 13339}, {0, 1}, {13339, 1}, 13339, 3 * 13339},  // threaded, broadcast a rows
      {{kBig}, {1}, {1}, kBig, kBig},                    // one long dense row
      // Rows longer than a thread chunk (4096) are split across threads: a split row against a
      // broadcast scalar, split rows read with a non-unit stride, rows an exact multiple of a chunk.
      {{kBig}, {1}, {0}, kBig, 1},
      {{2, 9001}, {1, 2}, {9001, 1}, 18002, 18002},
      {{3, 8192}, {8192, 1}, {0, 1}, 3 * 8192, 8192},
  };
  const BinaryOp ops[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div};
  for (const auto& d : descs) {
    BroadcastShape s;
    s.ndim = static_cast<int>(d.shape.size());
    std::int64_t n = 1;
    for (int i = 0; i < s.ndim; ++i) {
      s.shape[i] = d.shape[i];
      s.stride_a[i] = d.sa[i];
      s.stride_b[i] = d.sb[i];
      n *= d.shape[i];
    }
    const auto a = random_vec<T>(d.na, -2, 2, 1), b = random_vec<T>(d.nb, 0.5, 2, 2);
    for (BinaryOp op : ops) {
      std::vector<T> out(static_cast<size_t>(n), T(-999));
      cpu().binary(op, dtype_of<T>(), s, a.data(), b.data(), out.data());
      std::vector<double> want(static_cast<size_t>(n));
      reference::binary(op, s, to_doubles(a).data(), to_doubles(b).data(), want.data());
      EXPECT_TRUE(all_close("binary op " + std::to_string(int(op)) + " ndim " + std::to_string(s.ndim) + " n " + std::to_string(n), out, want, tol<T>(), tol<T>()));
    }
  }
}

// ---- unary forward and backward ----

// Every pointwise kernel of the op table (tests/op_table.h rows with `unary`), plus Sign
// (abs's derivative, no op of its own), forward and backward against kernels/reference/.
TYPED_TEST(CpuKernels, UnaryForwardAndBackwardEveryOp) {
  using T = TypeParam;
  std::vector<std::pair<std::string, testing::UnaryKernel>> kernels_under_test = {
      {"sign", {UnaryOp::Sign, 0, true}}};
  std::vector<std::pair<double, double>> ranges = {{-3, 3}};
  for (const auto& c : testing::op_cases())
    if (c.unary) {
      kernels_under_test.push_back({c.name, *c.unary});
      ranges.push_back(testing::value_range(c.inputs[0].init));
    }
  for (std::size_t k = 0; k < kernels_under_test.size(); ++k) {
    const auto& [name, u] = kernels_under_test[k];
    const auto [lo, hi] = ranges[k];
    for (std::int64_t n : {std::int64_t{1}, std::int64_t{7}, kBig}) {
      auto x = random_vec<T>(n, lo, hi, 3);
      if (n >= 7 && lo < 0 && u.op != UnaryOp::PowScalar)
        x[3] = T(0);  // exact zero: relu, abs, sign at their kink
      const auto dy = random_vec<T>(n, -1, 1, 4);
      std::vector<T> y(static_cast<size_t>(n)), dx(static_cast<size_t>(n));
      cpu().unary(u.op, dtype_of<T>(), n, u.alpha, x.data(), y.data());
      cpu().unary_backward(u.op, dtype_of<T>(), n, u.alpha, x.data(), y.data(), dy.data(), dx.data());
      std::vector<double> wy(x.size()), wdx(x.size());
      reference::unary(u.op, n, u.alpha, to_doubles(x).data(), wy.data());
      reference::unary_backward(u.op, n, u.alpha, to_doubles(x).data(), to_doubles(dy).data(), wdx.data());
      const std::string what = name + " n=" + std::to_string(n);
      EXPECT_TRUE(all_close(what + " forward", y, wy, 4 * tol<T>(), 4 * tol<T>()));
      EXPECT_TRUE(all_close(what + " backward", dx, wdx, 4 * tol<T>(), 4 * tol<T>()));
    }
  }
}

// ---- fill, arange, cast, memory ----

TEST(CpuKernelsMemory, FillArangeCast) {
  for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{7}, kBig}) {
    std::vector<float> f(n + 1, -1.f);
    std::vector<double> d(n + 1, -1.0);
    std::vector<std::int64_t> i(n + 1, -1);
    cpu().fill(DType::Float32, n, 2.5, f.data());
    cpu().fill(DType::Float64, n, -0.125, d.data());
    cpu().fill(DType::Int64, n, 9.0, i.data());
    for (std::int64_t k = 0; k < n; ++k) {
      ASSERT_EQ(f[k], 2.5f);
      ASSERT_EQ(d[k], -0.125);
      ASSERT_EQ(i[k], 9);
    }
    EXPECT_EQ(f[n], -1.f);  // nothing past n is written
    EXPECT_EQ(i[n], -1);
    cpu().arange(DType::Int64, n, i.data());
    cpu().arange(DType::Float32, n, f.data());
    cpu().arange(DType::Float64, n, d.data());
    for (std::int64_t k = 0; k < n; ++k) {
      ASSERT_EQ(i[k], k);
      ASSERT_EQ(f[k], float(k));
      ASSERT_EQ(d[k], double(k));
    }
    // Casts between every pair.
    std::vector<double> src(n);
    for (std::int64_t k = 0; k < n; ++k) src[k] = (k % 13) * 0.75 - 4.4;
    std::vector<float> f2(n);
    std::vector<std::int64_t> i2(n);
    std::vector<double> d2(n);
    cpu().cast(DType::Float64, DType::Float32, n, src.data(), f2.data());
    cpu().cast(DType::Float64, DType::Int64, n, src.data(), i2.data());
    cpu().cast(DType::Int64, DType::Float64, n, i2.data(), d2.data());
    for (std::int64_t k = 0; k < n; ++k) {
      ASSERT_EQ(f2[k], float(src[k]));
      ASSERT_EQ(i2[k], std::int64_t(src[k]));  // truncation toward zero
      ASSERT_EQ(d2[k], double(i2[k]));
    }
    cpu().cast(DType::Float32, DType::Float64, n, f2.data(), d2.data());
    for (std::int64_t k = 0; k < n; ++k) ASSERT_EQ(d2[k], double(f2[k]));
    cpu().cast(DType::Float64, DType::Float64, n, src.data(), d2.data());
    EXPECT_EQ(d2, src);
  }
}

TEST(CpuKernelsMemory, AllocateAlignedAndCopies) {
  void* p = cpu().allocate(100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u);
  const std::vector<double> src = {1, 2, 3};
  std::vector<double> back(3);
  cpu().copy_from_host(p, src.data(), 24);
  cpu().copy(static_cast<char*>(p) + 32, p, 24);
  cpu().copy_to_host(back.data(), static_cast<char*>(p) + 32, 24);
  EXPECT_EQ(back, src);
  cpu().deallocate(p, 100);
  EXPECT_EQ(cpu().allocate(0), nullptr);
  cpu().deallocate(nullptr, 0);
  EXPECT_STREQ(cpu().name(), "cpu");
}

// memory.cpp: blocks of 2 MiB and more start on a 2 MiB boundary and carry the huge-page advice
// (the VMA's "hg" flag in /proc/self/smaps) wherever the kernel has transparent huge pages.
TEST(CpuKernelsMemory, LargeBlocksStartOnAHugePageBoundaryWithHugePageAdvice) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under AddressSanitizer every block is exact and 64-byte aligned (memory.cpp)";
#else
  constexpr std::size_t kHuge = 2 * 1024 * 1024, size = 3 * kHuge + 100;
  auto* p = static_cast<unsigned char*>(cpu().allocate(size));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % kHuge, 0u);
  std::fill_n(p, size, 1);  // the whole block is usable
  if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) {
    std::ifstream smaps("/proc/self/smaps");
    std::string line, flags;
    bool inside = false;
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    while (std::getline(smaps, line)) {
      std::uintptr_t lo = 0, hi = 0;
      if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(' ') > line.find('-')) {
        inside = lo <= at && at < hi;
      } else if (inside && line.rfind("VmFlags:", 0) == 0) {
        flags = line;
        break;
      }
    }
    EXPECT_NE(flags.find(" hg"), std::string::npos) << "the block's mapping: " << flags;
  }
  cpu().deallocate(p, size);
#endif
}

TEST(CpuKernelsMemory, FloatingKernelsRejectInt64) {
  std::vector<std::int64_t> x(3), y(3);
  EXPECT_THROW(cpu().unary(UnaryOp::Exp, DType::Int64, 3, 0, x.data(), y.data()), Unsupported);
}

}  // namespace
}  // namespace shrink::kernels
