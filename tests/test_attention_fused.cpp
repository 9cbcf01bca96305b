// The fused attention kernel (kernels/cpu/attention.cpp, kernels/cuda/attention.cu) against the
// composite of matmul and softmax it replaces (AttentionKernel::Composite): forward and the
// gradients of q, k and v, at sequence lengths that cross its query and key blocks, with every
// mask layout, in the (B, H, T, d) and the (B, T, H*d) layouts; independent of the thread
// count; what Auto chooses and why Fused refuses. The gradient checks and the plain-loop
// references of the op are rows of the op table (tests/op_table.h: attention_*,
// multi_head_attention_*).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "core/shrink.h"
#include "kernels/reference/attention.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::testing;

namespace {

struct Grads {
  Tensor out, dq, dk, dv, dmask;
};

Tensor leaf(const Shape& s, std::uint64_t seed, DType dtype, double lo = -2, double hi = 2) {
  Tensor t = random_tensor(s, seed, lo, hi).to(dtype);
  t.requires_grad_(true);
  return t;
}

// out and the gradients of sum(out * w) for fixed random weights w, through `kernel`.
template <class F>
Grads run(F attend, Tensor q, Tensor k, Tensor v, const Tensor& mask) {
  for (Tensor* t : {&q, &k, &v}) t->zero_grad();
  const Tensor out = attend(q, k, v, mask);
  const Tensor w = random_tensor(out.shape(), 99).to(out.dtype());
  sum(mul(out, w)).backward();
  return {out.detach(), q.grad(), k.grad(), v.grad(), mask.defined() ? mask.grad() : Tensor()};
}

::testing::AssertionResult same(const Grads& a, const Grads& b, double tol) {
  for (const auto& [name, x, y] : {std::tuple{"out", a.out, b.out}, {"dq", a.dq, b.dq}, {"dk", a.dk, b.dk},
                                   {"dv", a.dv, b.dv}}) {
    auto r = all_close(name, x, y, tol, tol);
    if (!r) return r;
  }
  return ::testing::AssertionSuccess();
}

struct Case {
  const char* name;
  Shape q, k, v, mask;  // mask empty: none
  double mask_fill;     // mask values: a random half of the entries get this, the rest random
};

// Additive mask values: uniform in [-1, 1] with about a third set to `fill` (-1e9 or -inf).
Tensor mask_of(const Shape& s, double fill, DType dtype) {
  std::vector<double> m = random_vec<double>(numel(s), -1, 1, 7);
  const std::vector<double> pick = random_vec<double>(numel(s), 0, 1, 8);
  for (size_t i = 0; i < m.size(); ++i)
    if (pick[i] < 0.33) m[i] = fill;
  return Tensor::from_vector(m, s).to(dtype);
}

const Case kCases[] = {
    {"no mask, one block", {2, 3, 5, 4}, {2, 3, 7, 4}, {2, 3, 7, 6}, {}, 0},
    {"no mask, blocks crossed", {1, 2, 70, 5}, {1, 2, 131, 5}, {1, 2, 131, 3}, {}, 0},
    {"padding mask (B,1,1,Tk)", {3, 2, 40, 8}, {3, 2, 67, 8}, {3, 2, 67, 8}, {3, 1, 1, 67}, -1e9},
    {"full mask (B,H,Tq,Tk)", {2, 2, 33, 4}, {2, 2, 65, 4}, {2, 2, 65, 4}, {2, 2, 33, 65}, -1e9},
    {"shared (Tq,Tk) mask", {2, 3, 9, 4}, {2, 3, 80, 4}, {2, 3, 80, 2}, {9, 80}, -1e9},
    {"per-head (1,H,1,Tk) mask", {2, 3, 9, 4}, {2, 3, 11, 4}, {2, 3, 11, 4}, {1, 3, 1, 11}, -1e9},
    {"-inf mask", {2, 2, 6, 4}, {2, 2, 70, 4}, {2, 2, 70, 4}, {2, 1, 6, 70}, -INFINITY},
    {"3 leading axes, (A,B,1,..) mask", {2, 3, 2, 5, 4}, {2, 3, 2, 7, 4}, {2, 3, 2, 7, 4}, {2, 3, 1, 1, 7}, -1e9},
    {"no leading axes", {37, 6}, {90, 6}, {90, 5}, {37, 90}, -1e9},
};

template <class T>
void check_fused_equals_composite(double tol) {
  const DType dt = shrink::dtype_of<T>();
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    const Tensor q = leaf(c.q, 1, dt), k = leaf(c.k, 2, dt), v = leaf(c.v, 3, dt);
    const Tensor mask = c.mask.empty() ? Tensor() : mask_of(c.mask, c.mask_fill, dt);
    const auto with = [](AttentionKernel kernel) {
      return [kernel](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& m) {
        return scaled_dot_product_attention(q, k, v, m, 0, kernel);
      };
    };
    EXPECT_TRUE(same(run(with(AttentionKernel::Fused), q, k, v, mask),
                     run(with(AttentionKernel::Composite), q, k, v, mask), tol));
  }
}

}  // namespace

TEST(FusedAttention, EqualsTheCompositeInFloat64) { check_fused_equals_composite<double>(1e-11); }
TEST(FusedAttention, EqualsTheCompositeInFloat32) { check_fused_equals_composite<float>(2e-5); }

// The fused forward against the plain double loop of kernels/reference/attention.h at a long,
// odd-sized sequence (the op table's rows are short).
TEST(FusedAttention, MatchesThePlainLoopOnALongSequence) {
  const std::int64_t b = 3, tq = 257, tk = 300, d = 7, dv = 9;
  const Tensor q = random_tensor({b, tq, d}, 11), k = random_tensor({b, tk, d}, 12), v = random_tensor({b, tk, dv}, 13);
  const Tensor mask = mask_of({b, tq, tk}, -1e9, DType::Float32);
  std::vector<double> want(static_cast<size_t>(b * tq * dv));
  const std::vector<double> qd = values_of(q), kd = values_of(k), vd = values_of(v), md = values_of(mask);
  kernels::reference::attention<double>(b, tq, tk, d, dv, 0.3, qd.data(), kd.data(), vd.data(), md.data(),
                                        want.data());
  const Tensor got = scaled_dot_product_attention(q, k, v, mask, 0.3, AttentionKernel::Fused);
  EXPECT_TRUE(all_close("out", values_of(got), want, 1e-5, 1e-5));
}

// A row whose keys are all masked (-1e9) averages the values, as the composite does.
TEST(FusedAttention, FullyMaskedRowAveragesTheValues) {
  const Tensor q = random_tensor({1, 2, 3}, 1), k = random_tensor({1, 4, 3}, 2), v = random_tensor({1, 4, 2}, 3);
  const Tensor mask = Tensor::from_vector(std::vector<float>{-1e9f, -1e9f, -1e9f, -1e9f, 0, 0, 0, 0}, {1, 2, 4});
  const Tensor fused = scaled_dot_product_attention(q, k, v, mask, 0, AttentionKernel::Fused);
  EXPECT_TRUE(all_close("fused", fused,
                        scaled_dot_product_attention(q, k, v, mask, 0, AttentionKernel::Composite), 1e-6, 1e-6));
  const std::vector<double> out = values_of(fused), vals = values_of(v);
  for (int c = 0; c < 2; ++c)
    EXPECT_NEAR(out[c], (vals[c] + vals[2 + c] + vals[4 + c] + vals[6 + c]) / 4, 1e-6);
}

TEST(FusedAttention, MultiHeadLayoutEqualsSplitHeads) {
  for (const DType dt : {DType::Float64, DType::Float32}) {
    const double tol = dt == DType::Float64 ? 1e-11 : 2e-5;
    const std::int64_t b = 2, tq = 45, tk = 77, heads = 3, d = 5, dv = 4;
    const Tensor q = leaf({b, tq, heads * d}, 21, dt), k = leaf({b, tk, heads * d}, 22, dt),
                 v = leaf({b, tk, heads * dv}, 23, dt);
    for (const Shape& ms : {Shape{}, Shape{b, 1, 1, tk}, Shape{b, heads, tq, tk}, Shape{tq, tk}}) {
      SCOPED_TRACE(ms.empty() ? "no mask" : shape_str(ms));
      const Tensor mask = ms.empty() ? Tensor() : mask_of(ms, -1e9, dt);
      const auto heads_by = [&](AttentionKernel kernel) {
        return [&, kernel](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& m) {
          return multi_head_attention(q, k, v, heads, m, 0, kernel);
        };
      };
      // The (B, H, T, d) route by hand: permute the heads out, attend, permute back.
      const auto by_hand = [&](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& m) {
        const auto split = [&](const Tensor& x) { return permute(reshape(x, {b, x.size(1), heads, -1}), {0, 2, 1, 3}); };
        const Tensor o = scaled_dot_product_attention(split(q), split(k), split(v), m, 0, AttentionKernel::Composite);
        return reshape(permute(o, {0, 2, 1, 3}), {b, tq, heads * dv});
      };
      const Grads want = run(by_hand, q, k, v, mask);
      EXPECT_TRUE(same(run(heads_by(AttentionKernel::Fused), q, k, v, mask), want, tol));
      EXPECT_TRUE(same(run(heads_by(AttentionKernel::Composite), q, k, v, mask), want, tol));
    }
  }
}

// Each query block and each problem is one thread's, and every sum runs in an order fixed by
// the shape: one thread and two give the same bits.
TEST(FusedAttention, IndependentOfTheThreadCount) {
  const Tensor q = leaf({4, 2, 70, 16}, 31, DType::Float32), k = leaf({4, 2, 70, 16}, 32, DType::Float32),
               v = leaf({4, 2, 70, 16}, 33, DType::Float32);
  const Tensor mask = mask_of({4, 1, 1, 70}, -1e9, DType::Float32);
  const auto fused = [](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& m) {
    return scaled_dot_product_attention(q, k, v, m, 0, AttentionKernel::Fused);
  };
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  const Grads one = run(fused, q, k, v, mask);
  omp_set_num_threads(2);
  const Grads two = run(fused, q, k, v, mask);
  omp_set_num_threads(before);
  for (const auto& [name, a, b] : {std::tuple{"out", one.out, two.out}, {"dq", one.dq, two.dq},
                                   {"dk", one.dk, two.dk}, {"dv", one.dv, two.dv}})
    EXPECT_TRUE(all_same(name, a.to_vector<float>(), b.to_vector<float>()));
}

// Auto gives a mask that needs a gradient one (through the composite); Fused says why it cannot.
TEST(FusedAttention, AutoKeepsTheMaskGradientAndFusedSaysWhyNot) {
  const Tensor q = leaf({1, 2, 3, 4}, 41, DType::Float64), k = leaf({1, 2, 5, 4}, 42, DType::Float64),
               v = leaf({1, 2, 5, 4}, 43, DType::Float64);
  Tensor mask = leaf({1, 1, 3, 5}, 44, DType::Float64, -1, 1);
  const auto with = [](AttentionKernel kernel) {
    return [kernel](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& m) {
      return scaled_dot_product_attention(q, k, v, m, 0, kernel);
    };
  };
  const Grads automatic = run(with(AttentionKernel::Auto), q, k, v, mask);
  ASSERT_TRUE(automatic.dmask.defined());
  mask.zero_grad();
  const Grads composite = run(with(AttentionKernel::Composite), q, k, v, mask);
  EXPECT_TRUE(all_close("dmask", automatic.dmask, composite.dmask, 1e-12, 1e-12));
  const std::string why = error_of([&] { with(AttentionKernel::Fused)(q, k, v, mask); });
  EXPECT_NE(why.find("the mask needs a gradient"), std::string::npos) << why;
  // Under no_grad the same mask is a constant: Fused runs.
  NoGradGuard no_grad;
  EXPECT_TRUE(all_close("no grad", with(AttentionKernel::Fused)(q, k, v, mask),
                        with(AttentionKernel::Composite)(q, k, v, mask), 1e-12, 1e-12));
}

TEST(FusedAttention, AMaskOfThreeStridedGroupsFallsBack) {
  // Scores (2, 3, 2, T, T) under a mask (2, 1, 2, 1, T): the leading offsets are 2a + c, a
  // pattern of three groups (a, b broadcast, c) that the kernel's two strided axes cannot hold.
  const Tensor q = random_tensor({2, 3, 2, 4, 3}, 51), k = random_tensor({2, 3, 2, 4, 3}, 52),
               v = random_tensor({2, 3, 2, 4, 3}, 53);
  const Tensor mask = mask_of({2, 1, 2, 1, 4}, -1e9, DType::Float32);
  const std::string why =
      error_of([&] { scaled_dot_product_attention(q, k, v, mask, 0, AttentionKernel::Fused); });
  EXPECT_NE(why.find("two strided groups"), std::string::npos) << why;
  EXPECT_TRUE(all_close("auto", scaled_dot_product_attention(q, k, v, mask),
                        scaled_dot_product_attention(q, k, v, mask, 0, AttentionKernel::Composite), 0, 0));
}

TEST(FusedAttention, MultiHeadShapeErrorsNameTheTensors) {
  const Tensor q = Tensor::zeros({2, 5, 12}), k = Tensor::zeros({2, 7, 12}), v = Tensor::zeros({2, 7, 12});
  auto error = [&](auto f) { return error_of(f); };
  std::string e = error([&] { multi_head_attention(q, k, v, 5); });
  EXPECT_NE(e.find("heads (5)"), std::string::npos) << e;
  e = error([&] { multi_head_attention(q, Tensor::zeros({2, 7, 8}), v, 4); });
  EXPECT_NE(e.find("k (2, 7, 8)"), std::string::npos) << e;
  e = error([&] { multi_head_attention(q, k, Tensor::zeros({2, 6, 12}), 4); });
  EXPECT_NE(e.find("v (2, 6, 12)"), std::string::npos) << e;
  e = error([&] { multi_head_attention(q, k, v, 4, Tensor::zeros({2, 1, 1, 5})); });
  EXPECT_NE(e.find("mask (2, 1, 1, 5)"), std::string::npos) << e;
  EXPECT_NE(e.find("(2, 4, 5, 7)"), std::string::npos) << e;
}
