// The CPU backend's math kernels (reductions, softmax family, cross-entropy, optimizer
// steps) against kernels/reference/, on odd shapes and above the OpenMP grain. GEMM has its
// own suite (test_gemm.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/reference/optim.h"
#include "kernels/reference/reduce.h"
#include "kernels/reference/softmax.h"
#include "tests/cpu_kernel_test.h"
#include "tests/test_helpers.h"

namespace shrink::kernels {
namespace {

// ---- reductions ----

TYPED_TEST(CpuKernels, ReduceSumAndMaxWithArgmax) {
  using T = TypeParam;
  struct Dims { std::int64_t outer, reduce, inner; };
  for (const Dims d : {Dims{1, 1, 1}, Dims{3, 5, 7}, Dims{1, 13, 1}, Dims{7, 5, 1}, Dims{3, 1, 7},
                       Dims{2, 3, 300}, Dims{1, kBig, 1}, Dims{kBig, 3, 1}, Dims{5, 7, 1031},
                       Dims{3, 0, 2}}) {
    const std::int64_t n = d.outer * d.reduce * d.inner, m = d.outer * d.inner;
    // Few distinct values so that ties are common.
    auto x = random_vec<T>(n, -4, 4, 5);
    for (auto& v : x) v = std::round(v);
    std::vector<T> s(static_cast<size_t>(m), T(-7)), mx(static_cast<size_t>(m)), mx2(m);
    std::vector<std::int64_t> am(static_cast<size_t>(m), -1);
    cpu().reduce(ReduceOp::Sum, dtype_of<T>(), d.outer, d.reduce, d.inner, x.data(), s.data(), nullptr);
    std::vector<double> ws(m), wm(m);
    std::vector<std::int64_t> wam(m);
    const auto xd = to_doubles(x);
    reference::reduce_sum(d.outer, d.reduce, d.inner, xd.data(), ws.data());
    if (d.reduce > 0) reference::reduce_max(d.outer, d.reduce, d.inner, xd.data(), wm.data(), wam.data());
    const std::string what = std::to_string(d.outer) + "x" + std::to_string(d.reduce) + "x" + std::to_string(d.inner);
    EXPECT_TRUE(all_close("sum " + what, s, ws, tol<T>(), tol<T>()));
    if (d.reduce == 0) continue;  // max of nothing is rejected above the kernel
    cpu().reduce(ReduceOp::Max, dtype_of<T>(), d.outer, d.reduce, d.inner, x.data(), mx.data(), am.data());
    cpu().reduce(ReduceOp::Max, dtype_of<T>(), d.outer, d.reduce, d.inner, x.data(), mx2.data(), nullptr);
    EXPECT_TRUE(all_close("max " + what, mx, wm, 0, 0));
    EXPECT_EQ(mx, mx2);
    EXPECT_EQ(am, wam) << "argmax (first of ties) " << what;
  }
}

TYPED_TEST(CpuKernels, MaxOfAllNegativeInfinityAndTies) {
  using T = TypeParam;
  const T inf = std::numeric_limits<T>::infinity();
  std::vector<T> x = {-inf, -inf, 2, 5, 5, 1};  // (2, 3, 1)
  std::vector<T> out(2);
  std::vector<std::int64_t> am(2);
  cpu().reduce(ReduceOp::Max, dtype_of<T>(), 2, 3, 1, x.data(), out.data(), am.data());
  EXPECT_EQ(am, (std::vector<std::int64_t>{2, 0}));
  EXPECT_EQ(out, (std::vector<T>{2, 5}));
  std::vector<T> all_inf = {-inf, -inf, -inf};
  cpu().reduce(ReduceOp::Max, dtype_of<T>(), 1, 3, 1, all_inf.data(), out.data(), am.data());
  EXPECT_EQ(am[0], 0);
  EXPECT_EQ(out[0], -inf);
}

// ---- softmax family ----

TYPED_TEST(CpuKernels, SoftmaxLogSoftmaxAndBackward) {
  using T = TypeParam;
  struct Dims { std::int64_t outer, dim, inner; };
  for (const Dims d : {Dims{1, 1, 1}, Dims{3, 5, 7}, Dims{5, 7, 1}, Dims{1, 11, 3}, Dims{331, 101, 1},
                       Dims{3, 7, 2003}}) {
    const std::int64_t n = d.outer * d.dim * d.inner;
    const auto x = random_vec<T>(n, -6, 6, 6), dy = random_vec<T>(n, -1, 1, 7);
    for (bool log : {false, true}) {
      std::vector<T> y(n), dx(n);
      cpu().softmax(dtype_of<T>(), log, d.outer, d.dim, d.inner, x.data(), y.data());
      cpu().softmax_backward(dtype_of<T>(), log, d.outer, d.dim, d.inner, y.data(), dy.data(), dx.data());
      std::vector<double> wy(n), wdx(n);
      reference::softmax(log, d.outer, d.dim, d.inner, to_doubles(x).data(), wy.data());
      reference::softmax_backward(log, d.outer, d.dim, d.inner, wy.data(), to_doubles(dy).data(),
                                  wdx.data());
      const std::string what = std::string(log ? "log_softmax " : "softmax ") + std::to_string(n);
      EXPECT_TRUE(all_close(what, y, wy, 8 * tol<T>(), 8 * tol<T>()));
      EXPECT_TRUE(all_close(what + " backward", dx, wdx, 8 * tol<T>(), 8 * tol<T>()));
    }
  }
}

TYPED_TEST(CpuKernels, CrossEntropyAndBackwardWithSmoothing) {
  using T = TypeParam;
  for (auto [n, c] : std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 1}, {5, 7}, {3301, 11}}) {
    const auto z = random_vec<T>(n * c, -5, 5, 8);
    std::vector<std::int64_t> labels(n);
    for (std::int64_t r = 0; r < n; ++r) labels[r] = (r * 7 + 3) % c;
    for (double eps : {0.0, 0.1, 1.0}) {
      std::vector<T> loss(n), probs(n * c), grad(n * c);
      const double scale = 0.37;
      cpu().cross_entropy(dtype_of<T>(), n, c, eps, z.data(), labels.data(), loss.data(), probs.data());
      cpu().cross_entropy_backward(dtype_of<T>(), n, c, eps, scale, probs.data(), labels.data(), grad.data());
      std::vector<double> wl(n), wp(n * c), wg(n * c);
      reference::cross_entropy(n, c, eps, to_doubles(z).data(), labels.data(), wl.data(), wp.data());
      reference::cross_entropy_backward(n, c, eps, scale, wp.data(), labels.data(), wg.data());
      const std::string what = "cross_entropy n=" + std::to_string(n) + " eps=" + std::to_string(eps);
      EXPECT_TRUE(all_close(what, loss, wl, 8 * tol<T>(), 8 * tol<T>()));
      EXPECT_TRUE(all_close(what + " probs", probs, wp, 8 * tol<T>(), 8 * tol<T>()));
      EXPECT_TRUE(all_close(what + " backward", grad, wg, 8 * tol<T>(), 8 * tol<T>()));
    }
  }
}

// ---- optimizer steps ----

TYPED_TEST(CpuKernels, SgdStepMatchesReference) {
  using T = TypeParam;
  struct Case { SgdParams p; bool buffer; };
  std::vector<Case> cases;
  for (bool nesterov : {false, true})
    for (bool first : {true, false}) {
      SgdParams p;
      p.lr = 0.05;
      p.momentum = 0.9;
      p.dampening = nesterov ? 0.0 : 0.1;
      p.weight_decay = 0.01;
      p.nesterov = nesterov;
      p.first_step = first;
      cases.push_back({p, true});
    }
  SgdParams plain;
  plain.lr = 0.1;
  plain.weight_decay = 0.02;
  cases.push_back({plain, false});  // no momentum, no buffer
  for (const auto& c : cases)
    for (std::int64_t n : {std::int64_t{7}, kBig}) {
      auto w = random_vec<T>(n, -1, 1, 14);
      const auto g = random_vec<T>(n, -1, 1, 15);
      auto buf = random_vec<T>(n, -1, 1, 16);
      std::vector<double> ww(w.begin(), w.end()), wb(buf.begin(), buf.end());
      cpu().sgd_step(dtype_of<T>(), n, c.p, w.data(), g.data(), c.buffer ? buf.data() : nullptr);
      reference::sgd_step(n, c.p, ww.data(), to_doubles(g).data(), wb.data());
      const std::string what = "sgd nesterov=" + std::to_string(c.p.nesterov) +
                               " first=" + std::to_string(c.p.first_step) + " n=" + std::to_string(n);
      EXPECT_TRUE(all_close(what, w, ww, 4 * tol<T>(), 4 * tol<T>()));
      if (c.buffer) {
        EXPECT_TRUE(all_close(what + " buffer", buf, wb, 4 * tol<T>(), 4 * tol<T>()));
      }
    }
}

TYPED_TEST(CpuKernels, AdamWStepMatchesReference) {
  using T = TypeParam;
  for (std::int64_t step : {1, 2, 10})
    for (std::int64_t n : {std::int64_t{7}, kBig}) {
      AdamWParams p;
      p.lr = 1e-2;
      p.beta1 = 0.85;
      p.beta2 = 0.99;
      p.eps = 1e-6;
      p.weight_decay = 0.1;
      p.step = step;
      auto w = random_vec<T>(n, -1, 1, 17);
      const auto g = random_vec<T>(n, -1, 1, 18);
      auto m = random_vec<T>(n, -0.1, 0.1, 19);
      auto v = random_vec<T>(n, 0, 0.1, 20);
      std::vector<double> ww(w.begin(), w.end()), wm(m.begin(), m.end()), wv(v.begin(), v.end());
      cpu().adamw_step(dtype_of<T>(), n, p, w.data(), g.data(), m.data(), v.data());
      reference::adamw_step(n, p, ww.data(), to_doubles(g).data(), wm.data(), wv.data());
      const std::string what = "adamw step=" + std::to_string(step) + " n=" + std::to_string(n);
      EXPECT_TRUE(all_close(what, w, ww, 8 * tol<T>(), 8 * tol<T>()));
      EXPECT_TRUE(all_close(what + " m", m, wm, 4 * tol<T>(), 4 * tol<T>()));
      EXPECT_TRUE(all_close(what + " v", v, wv, 4 * tol<T>(), 4 * tol<T>()));
    }
}

}  // namespace
}  // namespace shrink::kernels
