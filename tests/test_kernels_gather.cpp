// gather / scatter_add / find_out_of_range on the CPU backend against plain reference loops
// on odd shapes, the core ops built on them (gather, max's backward, index_select's check)
// and their errors for out-of-range indices.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "kernels/backend.h"

namespace shrink {
namespace {

using kernels::Backend;

Backend& cpu() { return kernels::backend(DeviceType::CPU); }

std::vector<std::int64_t> random_indices(std::int64_t n, std::int64_t bound, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(bound));
  return v;
}

template <class T>
std::vector<T> random_values(std::int64_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(-4, 4);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(d(rng));
  return v;
}

// Reference: out[o, j, i] = in[o, idx[o, j, i], i].
template <class T>
std::vector<T> gather_reference(std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                                const std::vector<T>& in, std::int64_t n_idx,
                                const std::vector<std::int64_t>& idx) {
  std::vector<T> out(static_cast<size_t>(outer * n_idx * inner));
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t j = 0; j < n_idx; ++j)
      for (std::int64_t i = 0; i < inner; ++i) {
        const std::int64_t k = (o * n_idx + j) * inner + i;
        out[k] = in[(o * in_dim + idx[k]) * inner + i];
      }
  return out;
}

// Reference: out[o, idx[o, j, i], i] += src[o, j, i], j in order.
template <class T>
void scatter_add_reference(std::int64_t outer, std::int64_t in_dim, std::int64_t inner,
                           std::int64_t n_idx, const std::vector<std::int64_t>& idx,
                           const std::vector<T>& src, std::vector<T>& out) {
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t j = 0; j < n_idx; ++j)
      for (std::int64_t i = 0; i < inner; ++i) {
        const std::int64_t k = (o * n_idx + j) * inner + i;
        out[(o * in_dim + idx[k]) * inner + i] += src[k];
      }
}

struct Case {
  std::int64_t outer, in_dim, inner, n_idx;
};
const Case kCases[] = {{3, 7, 5, 4}, {1, 1, 1, 1}, {2, 9, 1, 13}, {5, 1, 3, 2}, {1, 33, 17, 40}};

template <class T>
void check_gather(DType t) {
  for (const Case& c : kCases) {
    SCOPED_TRACE("outer=" + std::to_string(c.outer) + " in_dim=" + std::to_string(c.in_dim) +
                 " inner=" + std::to_string(c.inner) + " n_idx=" + std::to_string(c.n_idx));
    const auto in = random_values<T>(c.outer * c.in_dim * c.inner, 1);
    const auto idx = random_indices(c.outer * c.n_idx * c.inner, c.in_dim, 2);
    std::vector<T> out(idx.size(), T(-99));
    cpu().gather(t, c.outer, c.in_dim, c.inner, in.data(), c.n_idx, idx.data(), out.data());
    EXPECT_EQ(out, gather_reference(c.outer, c.in_dim, c.inner, in, c.n_idx, idx));
  }
}

TEST(GatherKernel, MatchesReferenceLoop) {
  check_gather<float>(DType::Float32);
  check_gather<double>(DType::Float64);
  check_gather<std::int64_t>(DType::Int64);
}

template <class T>
void check_scatter_add(DType t) {
  for (const Case& c : kCases) {
    SCOPED_TRACE("outer=" + std::to_string(c.outer) + " in_dim=" + std::to_string(c.in_dim) +
                 " inner=" + std::to_string(c.inner) + " n_idx=" + std::to_string(c.n_idx));
    // n_idx > in_dim in some cases: repeated indices must add up, not overwrite.
    const auto src = random_values<T>(c.outer * c.n_idx * c.inner, 3);
    const auto idx = random_indices(c.outer * c.n_idx * c.inner, c.in_dim, 4);
    auto out = random_values<T>(c.outer * c.in_dim * c.inner, 5);  // accumulates into this
    auto expected = out;
    scatter_add_reference(c.outer, c.in_dim, c.inner, c.n_idx, idx, src, expected);
    cpu().scatter_add(t, c.outer, c.in_dim, c.inner, c.n_idx, idx.data(), src.data(), out.data());
    EXPECT_EQ(out, expected);  // same order of additions: bit-identical
  }
}

TEST(ScatterAddKernel, MatchesReferenceLoopWithRepeatedIndices) {
  check_scatter_add<float>(DType::Float32);
  check_scatter_add<double>(DType::Float64);
}

TEST(FindOutOfRangeKernel, ReportsFirstBadPositionOrN) {
  std::int64_t at = -1;
  const std::vector<std::int64_t> good = {0, 6, 3, 6};
  cpu().find_out_of_range(4, good.data(), 7, &at);
  EXPECT_EQ(at, 4);
  const std::vector<std::int64_t> bad = {0, 7, -1, 9};
  cpu().find_out_of_range(4, bad.data(), 7, &at);
  EXPECT_EQ(at, 1);
  const std::vector<std::int64_t> negative = {2, 3, -1};
  cpu().find_out_of_range(3, negative.data(), 7, &at);
  EXPECT_EQ(at, 2);
  cpu().find_out_of_range(0, nullptr, 7, &at);
  EXPECT_EQ(at, 0);
}

// ---- core ops ----

TEST(GatherOp, ForwardAndBackwardMatchReference) {
  const std::int64_t outer = 3, in_dim = 7, inner = 5, n_idx = 4;
  const auto xv = random_values<double>(outer * in_dim * inner, 6);
  const auto iv = random_indices(outer * n_idx * inner, in_dim, 7);
  Tensor x = Tensor::from_vector(xv, {outer, in_dim, inner});
  x.requires_grad_();
  Tensor idx = Tensor::from_vector(iv, {outer, n_idx, inner});
  Tensor y = gather(x, 1, idx);
  ASSERT_EQ(y.shape(), (Shape{outer, n_idx, inner}));
  EXPECT_EQ(y.to_vector<double>(), gather_reference(outer, in_dim, inner, xv, n_idx, iv));
  const auto gv = random_values<double>(outer * n_idx * inner, 8);
  y.backward(Tensor::from_vector(gv, {outer, n_idx, inner}));
  std::vector<double> expected(xv.size(), 0.0);
  scatter_add_reference(outer, in_dim, inner, n_idx, iv, gv, expected);
  EXPECT_EQ(x.grad().to_vector<double>(), expected);
}

TEST(GatherOp, OutOfRangeIndexNamesOpIndexAndBound) {
  Tensor x = Tensor::zeros({3, 7, 5});
  std::vector<std::int64_t> iv(3 * 2 * 5, 1);
  iv[13] = 7;  // one past the end of axis 1
  try {
    gather(x, 1, Tensor::from_vector(iv, {3, 2, 5}));
    FAIL() << "an out-of-range index did not throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("gather"), std::string::npos) << m;
    EXPECT_NE(m.find("index 7"), std::string::npos) << m;
    EXPECT_NE(m.find("position 13"), std::string::npos) << m;
    EXPECT_NE(m.find("[0, 7)"), std::string::npos) << m;
  }
  iv[13] = -2;
  EXPECT_THROW(gather(x, 1, Tensor::from_vector(iv, {3, 2, 5})), Error);
  // Sizes off the gathered axis must match.
  EXPECT_THROW(gather(x, 1, Tensor::zeros({3, 2, 4}, DType::Int64)), Error);
  EXPECT_THROW(gather(x, 1, Tensor::zeros({3, 2, 5})), Error);  // float indices
}

TEST(IndexSelectOp, OutOfRangeIndexNamesOpIndexAndBound) {
  Tensor x = Tensor::zeros({4, 6});
  try {
    index_select(x, 1, Tensor::from_vector(std::vector<std::int64_t>{0, 5, 6, 2}, {4}));
    FAIL() << "an out-of-range index did not throw";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("index_select: index 6"), std::string::npos) << m;
    EXPECT_NE(m.find("[0, 6)"), std::string::npos) << m;
  }
}

// max's backward puts the upstream gradient at the first maximum of each slice, and zeros
// elsewhere, for every axis of an odd shape.
TEST(MaxOp, BackwardScattersToFirstArgmax) {
  const Shape shape = {3, 7, 5};
  auto xv = random_values<float>(3 * 7 * 5, 9);
  xv[(1 * 7 + 2) * 5 + 3] = xv[(1 * 7 + 4) * 5 + 3] = 100.0f;  // a tie along axis 1
  for (int axis = 0; axis < 3; ++axis) {
    for (bool keepdim : {false, true}) {
      SCOPED_TRACE("axis " + std::to_string(axis) + (keepdim ? " keepdim" : ""));
      Tensor x = Tensor::from_vector(xv, shape);
      x.requires_grad_();
      Tensor y = max(x, axis, keepdim);
      const auto gv = random_values<float>(y.numel(), 10 + axis);
      y.backward(Tensor::from_vector(gv, y.shape()));
      const auto at = argmax(x.detach(), axis, true).to_vector<std::int64_t>();
      std::int64_t outer = 1, inner = 1;
      for (int d = 0; d < axis; ++d) outer *= shape[d];
      for (int d = axis + 1; d < 3; ++d) inner *= shape[d];
      std::vector<float> expected(xv.size(), 0.0f);
      scatter_add_reference<float>(outer, shape[axis], inner, 1, at, gv, expected);
      EXPECT_EQ(x.grad().to_vector<float>(), expected);
      if (axis == 1) {  // the tie: the gradient goes to the first maximum, row 2, not row 4
        const auto gx = x.grad().to_vector<float>();
        EXPECT_EQ(gx[(1 * 7 + 2) * 5 + 3], gv[1 * 5 + 3]);
        EXPECT_EQ(gx[(1 * 7 + 4) * 5 + 3], 0.0f);
      }
    }
  }
}

}  // namespace
}  // namespace shrink
