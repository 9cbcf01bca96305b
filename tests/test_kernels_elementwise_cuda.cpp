// The CUDA backend's memory, elementwise, random and layout kernels against their CPU twins
// (kernels::backend(DeviceType::CPU)) on odd shapes: 1, 7, 1023, 33x17x5 and above 1M
// elements. Every test skips, with a message, where no GPU is present.
//
// Error bounds, and why:
// - exact (bitwise): copies, fill, arange, cast, strided_copy, index_select; binary ops and
//   the non-transcendental unary ops (IEEE +, -, *, / and sqrt are correctly rounded on both
//   devices); index_add (same summation order, no atomics); random_uniform and dropout (same
//   Philox draws, same arithmetic, fma where GCC fuses).
// - transcendental unary ops (exp, log, tanh, sigmoid, gelu, pow and their derivatives):
//   |gpu - cpu| <= tol * (1 + |cpu|) with tol 2e-6 (float) / 1e-14 (double). CUDA's
//   documented maximum errors are 1-4 ulp (expf 2, logf 1, tanhf 2, erff 2, powf 4; double
//   1-2), glibc's under 1 ulp, and nvcc may fuse a*b+c where GCC did not; composed formulas
//   (sigmoid, gelu, their derivatives) at most triple that: ~10 ulp at magnitude 1. The
//   (1 + |cpu|) scale keeps the bound meaningful where 1 + erf(x) cancels for gelu at x < 0.
// - random_normal: CUDA's double log/cos differ from glibc's by an ulp or two, so double
//   values agree to 1e-14 * (1 + |z|) * stddev and float values to one float ulp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/shrink.h"
#include "kernels/backend.h"
#include "tests/op_table.h"
#include "tests/test_helpers.h"
#include "kernels/cuda/cuda_backend.h"

namespace shrink::kernels {
namespace {

Backend& cpu() { return backend(DeviceType::CPU); }
Backend& gpu() { return backend(DeviceType::CUDA); }

const std::vector<std::int64_t> kSizes = {1, 7, 1023, 33 * 17 * 5, (1 << 20) + 3};

// A device buffer that frees itself.
struct DeviceBuffer {
  explicit DeviceBuffer(std::size_t n) : bytes(n), ptr(gpu().allocate(n)) {}
  ~DeviceBuffer() { gpu().deallocate(ptr, bytes); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : bytes(o.bytes), ptr(o.ptr) { o.ptr = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  std::size_t bytes;
  void* ptr;
};

template <class T>
DeviceBuffer upload(const std::vector<T>& v) {
  DeviceBuffer b(v.size() * sizeof(T));
  gpu().copy_from_host(b.ptr, v.data(), b.bytes);
  return b;
}

template <class T>
std::vector<T> download(const DeviceBuffer& b, std::size_t n) {
  std::vector<T> v(n);
  gpu().copy_to_host(v.data(), b.ptr, n * sizeof(T));
  return v;
}

using testing::random_vec;

template <class T> constexpr DType dt() {
  if constexpr (std::is_same_v<T, float>) return DType::Float32;
  else if constexpr (std::is_same_v<T, double>) return DType::Float64;
  else return DType::Int64;
}

// Bitwise equality (NaNs included), reporting the first mismatch.
template <class T>
void expect_same(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(T)), 0)
        << what << " at " << i << ": gpu " << got[i] << " cpu " << want[i];
}

template <class T>
void expect_close(const std::vector<T>& got, const std::vector<T>& want, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(double(got[i]), double(want[i]), tol * (1 + std::abs(double(want[i]))))
        << what << " at " << i;
}

template <class T> class CudaElementwise : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CudaElementwise, FloatTypes);

TEST(CudaMemory, SteadyStateAllocatesNothingNew) {
  SHRINK_SKIP_WITHOUT_GPU();
  EXPECT_EQ(gpu().allocate(0), nullptr);
#ifdef SHRINK_WITH_CUDA  // the allocator's counters exist only in CUDA builds
  const std::size_t sizes[] = {4, 100, 1000, 513, 3 << 20, (7 << 20) + 5, 64 << 10};
  auto step = [&] {
    std::vector<void*> blocks;
    for (std::size_t s : sizes) blocks.push_back(gpu().allocate(s));
    for (std::size_t i = 0; i < blocks.size(); ++i) gpu().deallocate(blocks[i], sizes[i]);
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up fills the free lists
  const std::size_t calls = cuda::cuda_malloc_calls();
  EXPECT_GT(cuda::cached_bytes(), std::size_t{7} << 20);
  for (int i = 0; i < 20; ++i) step();
  EXPECT_EQ(cuda::cuda_malloc_calls(), calls) << "a steady-state loop called cudaMalloc";
#endif
}

// More than the device holds (but under the overflow guard): a clear error naming the
// request and what is in use, and the backend still works afterwards.
TEST(CudaMemory, OutOfMemoryNamesTheRequestAndWhatIsInUse) {
  SHRINK_SKIP_WITHOUT_GPU();
  const std::size_t ten_tib = std::size_t{10} << 40;
  try {
    gpu().allocate(ten_tib);
    FAIL() << "allocating 10 TiB on the GPU did not throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("out of memory allocating 10485760 MiB"), std::string::npos) << m;
    EXPECT_NE(m.find("shrink's tensors hold"), std::string::npos) << m;
    EXPECT_NE(m.find("free of"), std::string::npos) << m;
  }
  DeviceBuffer after(4096);  // the allocator recovered
  EXPECT_NE(after.ptr, nullptr);
}

TEST(CudaMemory, CopiesRoundTrip) {
  SHRINK_SKIP_WITHOUT_GPU();
  // Staged (small) and direct (> 8 MiB) uploads; device-to-device copy.
  for (std::int64_t n : {std::int64_t{1}, std::int64_t{1023}, std::int64_t{3} << 20}) {
    const auto host = random_vec<float>(n, -1, 1, 5);
    DeviceBuffer a = upload(host), b(host.size() * sizeof(float));
    gpu().copy(b.ptr, a.ptr, b.bytes);
    expect_same(download<float>(b, host.size()), host, "round trip n=" + std::to_string(n));
  }
}

TEST(CudaElementwiseAllTypes, FillArangeCast) {
  SHRINK_SKIP_WITHOUT_GPU();
  for (std::int64_t n : kSizes) {
    auto each = [&](auto zero) {
      using T = decltype(zero);
      std::vector<T> want(n);
      DeviceBuffer d(n * sizeof(T));
      cpu().fill(dt<T>(), n, -2.5, want.data());
      gpu().fill(dt<T>(), n, -2.5, d.ptr);
      expect_same(download<T>(d, n), want, "fill");
      cpu().arange(dt<T>(), n, want.data());
      gpu().arange(dt<T>(), n, d.ptr);
      expect_same(download<T>(d, n), want, "arange");
      // Cast from T to every type; values in int64 range, negative ones truncate to zero.
      const auto src = random_vec<T>(n, -1000, 1000, 11);
      DeviceBuffer s = upload(src);
      auto to = [&](auto dst_zero) {
        using D = decltype(dst_zero);
        std::vector<D> w(n);
        DeviceBuffer o(n * sizeof(D));
        cpu().cast(dt<T>(), dt<D>(), n, src.data(), w.data());
        gpu().cast(dt<T>(), dt<D>(), n, s.ptr, o.ptr);
        expect_same(download<D>(o, n), w, std::string("cast to ") + dtype_name(dt<D>()));
      };
      to(float{});
      to(double{});
      to(std::int64_t{});
    };
    each(float{});
    each(double{});
    each(std::int64_t{});
  }
}

TYPED_TEST(CudaElementwise, BinaryMatchesCpuBitwise) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  struct Desc {
    std::vector<std::int64_t> shape, sa, sb;
    std::int64_t na, nb;
    std::int64_t skew = 0;  // element offset into a/b/out: misaligned vector loads
  };
  const std::int64_t big = (1 << 20) + 3;
  const std::vector<Desc> descs = {
      {{}, {}, {}, 1, 1},
      {{7}, {1}, {1}, 7, 7},
      {{1023}, {1}, {1}, 1023, 1023, 1},  // misaligned: scalar path
      {{1024}, {1}, {1}, 1024, 1024},     // vector path, no tail
      {{33, 17, 5}, {85, 5, 1}, {85, 5, 1}, 2805, 2805},
      {{33, 17, 5}, {85, 5, 1}, {0, 1, 0}, 2805, 17},      // b (17,) broadcast on axis 1
      {{33, 17, 5}, {1, 33, 561}, {85, 5, 1}, 2805, 2805},  // a read transposed
      {{5, 7}, {0, 1}, {1, 0}, 7, 5},                       // outer product
      {{big}, {1}, {1}, big, big},
      {{big}, {1}, {0}, big, 1},
  };
  const BinaryOp ops[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div};
  for (const auto& d : descs) {
    BroadcastShape s;
    s.ndim = static_cast<int>(d.shape.size());
    std::int64_t n = 1;
    for (int i = 0; i < s.ndim; ++i) {
      s.shape[i] = d.shape[i], s.stride_a[i] = d.sa[i], s.stride_b[i] = d.sb[i];
      n *= d.shape[i];
    }
    const auto a = random_vec<T>(d.na + d.skew, -3, 3, 1);
    const auto b = random_vec<T>(d.nb + d.skew, 0.5, 2, 2);  // no division by ~0
    DeviceBuffer da = upload(a), db = upload(b), dout((n + d.skew) * sizeof(T));
    for (BinaryOp op : ops) {
      std::vector<T> want(n);
      cpu().binary(op, dt<T>(), s, a.data() + d.skew, b.data() + d.skew, want.data());
      gpu().binary(op, dt<T>(), s, static_cast<const T*>(da.ptr) + d.skew,
                   static_cast<const T*>(db.ptr) + d.skew, static_cast<T*>(dout.ptr) + d.skew);
      const auto all = download<T>(dout, n + d.skew);
      expect_same(std::vector<T>(all.begin() + d.skew, all.end()), want,
                  "binary op " + std::to_string(int(op)) + " n=" + std::to_string(n));
    }
  }
}

TYPED_TEST(CudaElementwise, UnaryAndBackwardMatchCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;
  // Every pointwise kernel of the op table (rows with `unary`), plus Sign (abs's derivative).
  struct Case {
    std::string name;
    testing::UnaryKernel kernel;
    double lo, hi;
  };
  std::vector<Case> cases = {{"sign", {UnaryOp::Sign, 0, true}, -4, 4}};
  for (const auto& row : testing::op_cases())
    if (row.unary) {
      const auto [lo, hi] = testing::value_range(row.inputs[0].init);
      cases.push_back({row.name, *row.unary, lo, hi});
    }
  for (const auto& c : cases) {
    const UnaryOp op = c.kernel.op;
    const double alpha = c.kernel.alpha;
    const bool exact = c.kernel.correctly_rounded;
    for (std::int64_t n : kSizes) {
      const std::string what = c.name + " n=" + std::to_string(n);
      const auto x = random_vec<T>(n, c.lo, c.hi, 3);
      const auto dy = random_vec<T>(n, -1, 1, 4);
      std::vector<T> y(n), dx(n);
      cpu().unary(op, dt<T>(), n, alpha, x.data(), y.data());
      DeviceBuffer dx_in = upload(x), dy_in = upload(dy), out(n * sizeof(T));
      gpu().unary(op, dt<T>(), n, alpha, dx_in.ptr, out.ptr);
      const auto gy = download<T>(out, n);
      exact ? expect_same(gy, y, what) : expect_close(gy, y, tol, what);
      // Backward reads the CPU's y on both devices, so only the derivative is compared.
      DeviceBuffer y_in = upload(y);
      cpu().unary_backward(op, dt<T>(), n, alpha, x.data(), y.data(), dy.data(), dx.data());
      gpu().unary_backward(op, dt<T>(), n, alpha, dx_in.ptr, y_in.ptr, dy_in.ptr, out.ptr);
      const auto gdx = download<T>(out, n);
      exact ? expect_same(gdx, dx, what + " backward")
              : expect_close(gdx, dx, tol, what + " backward");
    }
  }
}

TYPED_TEST(CudaElementwise, RandomMatchesCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  using T = TypeParam;
  for (std::int64_t n : kSizes) {
    for (std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{4 * 37}}) {
      const std::string what = " n=" + std::to_string(n) + " offset=" + std::to_string(offset);
      std::vector<T> want(n), want_mask(n);
      DeviceBuffer out(n * sizeof(T)), mask(n * sizeof(T));
      cpu().random_uniform(dt<T>(), n, -2, 3, 1234, offset, want.data());
      gpu().random_uniform(dt<T>(), n, -2, 3, 1234, offset, out.ptr);
      expect_same(download<T>(out, n), want, "uniform" + what);

      cpu().random_normal(dt<T>(), n, 0.5, 2, 99, offset, want.data());
      gpu().random_normal(dt<T>(), n, 0.5, 2, 99, offset, out.ptr);
      const auto normal = download<T>(out, n);
      for (std::int64_t i = 0; i < n; ++i) {
        const double bound = std::is_same_v<T, float>
            ? std::max<double>(std::nextafter(std::abs(want[i]), T(INFINITY)) - std::abs(want[i]), 3e-14)
            : 1e-14 * 2 * (1 + std::abs(want[i]));
        ASSERT_NEAR(normal[i], want[i], bound) << "normal" << what << " at " << i;
      }

      const auto x = random_vec<T>(n, -1, 1, 8);
      DeviceBuffer xin = upload(x);
      std::vector<T> y(n);
      cpu().dropout(dt<T>(), n, 0.3, 7, offset, x.data(), y.data(), want_mask.data());
      gpu().dropout(dt<T>(), n, 0.3, 7, offset, xin.ptr, out.ptr, mask.ptr);
      expect_same(download<T>(out, n), y, "dropout y" + what);
      expect_same(download<T>(mask, n), want_mask, "dropout mask" + what);
    }
  }
  // A range one float ulp wide: most draws round onto hi and must be clamped below it.
  const double lo = 1.0, hi = std::nextafter(T(1), T(2));
  const std::int64_t n = 4099;
  std::vector<T> want(n);
  DeviceBuffer out(n * sizeof(T));
  cpu().random_uniform(dt<T>(), n, lo, hi, 5, 0, want.data());
  gpu().random_uniform(dt<T>(), n, lo, hi, 5, 0, out.ptr);
  const auto got = download<T>(out, n);
  expect_same(got, want, "uniform clamp");
  for (T v : got) ASSERT_TRUE(v >= T(lo) && v < T(hi)) << v;
}

TEST(CudaLayout, StridedCopyIndexSelectIndexAddMatchCpu) {
  SHRINK_SKIP_WITHOUT_GPU();
  struct Copy {
    std::vector<std::int64_t> shape, strides;
    std::int64_t in_size;
  };
  const std::vector<Copy> copies = {
      {{}, {}, 1},
      {{7}, {2}, 14},                                   // slice with step 2
      {{5, 33, 17}, {1, 85, 5}, 2805},                  // permute (2, 0, 1) of 33x17x5
      {{33, 17, 5}, {0, 5, 1}, 85},                     // broadcast over axis 0
      {{1025, 1025}, {1, 1025}, 1025 * 1025},           // > 1M transpose
      {{2, 1, 3, 1, 2, 3, 1, 2}, {36, 0, 12, 0, 1, 2, 0, 6}, 72},  // kMaxDims, permuted
  };
  auto each = [&](auto zero) {
    using T = decltype(zero);
    for (const auto& c : copies) {
      std::int64_t n = 1;
      for (auto s : c.shape) n *= s;
      const auto in = random_vec<T>(c.in_size, -100, 100, 21);
      std::vector<T> want(n);
      DeviceBuffer din = upload(in), out(n * sizeof(T));
      const int ndim = static_cast<int>(c.shape.size());
      cpu().strided_copy(dt<T>(), ndim, c.shape.data(), c.strides.data(), in.data(), want.data());
      gpu().strided_copy(dt<T>(), ndim, c.shape.data(), c.strides.data(), din.ptr, out.ptr);
      expect_same(download<T>(out, n), want, "strided_copy ndim=" + std::to_string(ndim));
    }
    // (outer, in_dim, inner) with repeated and out-of-order indices.
    const std::int64_t shapes[][3] = {{1, 1, 1}, {33, 17, 5}, {1, 7, 1023}, {1023, 9, 1}, {4, 300, 1031}};
    for (const auto& s : shapes) {
      const std::int64_t outer = s[0], in_dim = s[1], inner = s[2];
      std::vector<std::int64_t> idx;
      for (std::int64_t j = 0; j < in_dim + 3; ++j) idx.push_back((j * 7 + 3) % in_dim);
      idx.insert(idx.end(), {0, 0});
      const std::int64_t n_idx = static_cast<std::int64_t>(idx.size());
      const auto in = random_vec<T>(outer * in_dim * inner, -10, 10, 31);
      std::vector<T> want(outer * n_idx * inner);
      DeviceBuffer din = upload(in), didx = upload(idx), out(want.size() * sizeof(T));
      const auto* gidx = static_cast<const std::int64_t*>(didx.ptr);
      cpu().index_select(dt<T>(), outer, in_dim, inner, in.data(), n_idx, idx.data(), want.data());
      gpu().index_select(dt<T>(), outer, in_dim, inner, din.ptr, n_idx, gidx, out.ptr);
      expect_same(download<T>(out, want.size()), want, "index_select");
      if constexpr (!std::is_same_v<T, std::int64_t>) {
        // Scatter want (as grad_out) back onto `in` (as a non-zero grad_in), twice on the GPU:
        // deterministic, and bitwise the CPU's since repeated indices add in the same order.
        std::vector<T> acc = in;
        cpu().index_add(dt<T>(), outer, in_dim, inner, n_idx, idx.data(), want.data(), acc.data());
        for (int run = 0; run < 2; ++run) {
          DeviceBuffer grad_in = upload(in);
          gpu().index_add(dt<T>(), outer, in_dim, inner, n_idx, gidx, out.ptr, grad_in.ptr);
          expect_same(download<T>(grad_in, in.size()), acc, "index_add run " + std::to_string(run));
        }
      }
    }
  };
  each(float{});
  each(double{});
  each(std::int64_t{});
}

// Through Tensor ops on Device::cuda(): forward and backward equal the CPU's bit for bit
// (add, mul, relu and index_select are exact on both devices, and core/ runs the same
// sequence of kernels).
TEST(CudaTensorOps, AddMulReluIndexSelectForwardBackward) {
  SHRINK_SKIP_WITHOUT_GPU();
  const Shape shape = {33, 17};
  const auto xv = random_vec<float>(33 * 17, -1, 1, 41), wv = random_vec<float>(33 * 17, -1, 1, 42);
  const std::vector<std::int64_t> idx = {3, 0, 32, 3, 3, 17};
  const auto seed = random_vec<float>(6 * 17, -1, 1, 43);
  auto run = [&](Device dev) {
    Tensor x = Tensor::from_vector(xv, shape).to(dev).requires_grad_(true);
    Tensor w = Tensor::from_vector(wv, shape).to(dev).requires_grad_(true);
    Tensor y = index_select(relu(mul(add(x, w), x)), 0, Tensor::from_vector(idx, {6}).to(dev));
    y.backward(Tensor::from_vector(seed, {6, 17}).to(dev));
    return std::vector<std::vector<float>>{y.to_vector<float>(), x.grad().to_vector<float>(),
                                           w.grad().to_vector<float>()};
  };
  const auto want = run(Device::cpu()), got = run(Device::cuda());
  const char* names[] = {"forward", "x.grad", "w.grad"};
  for (int i = 0; i < 3; ++i) expect_same(got[i], want[i], names[i]);
}

}  // namespace
}  // namespace shrink::kernels
