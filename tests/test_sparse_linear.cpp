// kernels/cpu/sparse, core csr_linear and nn::SparseLinear: the CSR kernels against
// kernels/reference/sparse.h on odd shapes, the layer against the dense Linear it came from,
// and the checkpoint round trip. The op's float64 gradients are checked from its rows in
// tests/op_table.h (test_op_table.cpp).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <vector>

#include "core/shrink.h"
#include "kernels/cpu/sparse.h"
#include "kernels/reference/sparse.h"
#include "nn/checkpoint.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/sparse_linear.h"

using namespace shrink;

namespace {

// A random CSR (rows, cols) of about `density`, with some empty rows.
struct Csr {
  std::vector<std::int64_t> row_ptr{0}, col_idx;
  std::vector<double> values;
};
Csr random_csr(std::int64_t rows, std::int64_t cols, double density, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  Csr m;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c)
      if (r % 5 != 3 && u(rng) < density) {
        m.col_idx.push_back(c);
        m.values.push_back(u(rng) * 2 - 1);
      }
    m.row_ptr.push_back(static_cast<std::int64_t>(m.col_idx.size()));
  }
  return m;
}

std::vector<double> random_vec(std::size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <class T>
void check_kernels(double tol) {
  std::mt19937_64 rng(42);
  for (std::int64_t batch : {1, 5, 16, 17, 40}) {
    for (auto [rows, cols, density] : {std::tuple{7L, 13L, 0.3}, std::tuple{33L, 5L, 0.9},
                                       std::tuple{3L, 101L, 0.05}}) {
      const Csr m = random_csr(rows, cols, density, rng);
      const auto x = random_vec(batch * cols, rng), dy = random_vec(batch * rows, rng);
      const auto bias = random_vec(rows, rng);
      // The oracle: kernels/reference/sparse.h.
      std::vector<double> y_ref(batch * rows), dx_ref(batch * cols), dv_ref(m.values.size());
      kernels::reference::csr_linear_forward(batch, rows, cols, m.row_ptr.data(), m.col_idx.data(),
                                             m.values.data(), x.data(), bias.data(), y_ref.data());
      kernels::reference::csr_linear_backward_input(batch, rows, cols, m.row_ptr.data(),
                                                    m.col_idx.data(), m.values.data(), dy.data(),
                                                    dx_ref.data());
      kernels::reference::csr_sampled_gradient(batch, rows, cols, m.row_ptr.data(), m.col_idx.data(),
                                               dy.data(), x.data(), dv_ref.data());
      const auto v = cast<T>(m.values), xt = cast<T>(x), dyt = cast<T>(dy), bt = cast<T>(bias);
      std::vector<T> y(batch * rows), y_nobias(batch * rows), dx(batch * cols, T(7)), dv(v.size(), T(7));
      kernels::cpu::csr_linear_forward(batch, rows, cols, m.row_ptr.data(), m.col_idx.data(), v.data(),
                                       xt.data(), bt.data(), y.data());
      kernels::cpu::csr_linear_forward(batch, rows, cols, m.row_ptr.data(), m.col_idx.data(), v.data(),
                                       xt.data(), nullptr, y_nobias.data());
      kernels::cpu::csr_linear_backward_input(batch, rows, cols, m.row_ptr.data(), m.col_idx.data(),
                                              v.data(), dyt.data(), dx.data());
      kernels::cpu::csr_sampled_gradient(batch, rows, cols, m.row_ptr.data(), m.col_idx.data(),
                                         dyt.data(), xt.data(), dv.data());
      const std::string where = "batch " + std::to_string(batch) + ", " + std::to_string(rows) +
                                "x" + std::to_string(cols);
      for (std::size_t i = 0; i < y.size(); ++i) {
        ASSERT_NEAR(y[i], y_ref[i], tol) << where;
        ASSERT_NEAR(y_nobias[i], y_ref[i] - bias[i % rows], tol) << where;
      }
      for (std::size_t i = 0; i < dx.size(); ++i) ASSERT_NEAR(dx[i], dx_ref[i], tol) << where;
      for (std::size_t i = 0; i < dv.size(); ++i) ASSERT_NEAR(dv[i], dv_ref[i], tol) << where;
    }
  }
}

Tensor index_tensor(const std::vector<std::int64_t>& v) {
  return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())});
}

}  // namespace

TEST(SparseKernels, MatchReferenceLoopsFloat) { check_kernels<float>(1e-5); }
TEST(SparseKernels, MatchReferenceLoopsDouble) { check_kernels<double>(1e-12); }

TEST(CsrLinear, RejectsBadInput) {
  const Tensor v = Tensor::ones({2}), rp = index_tensor({0, 1, 2}), x = Tensor::ones({3, 4});
  EXPECT_THROW(csr_linear(x, v, rp, index_tensor({0, 4}), 4, Tensor()), Error);   // column 4
  EXPECT_THROW(csr_linear(x, v, index_tensor({0, 2, 1}), index_tensor({0, 1}), 4, Tensor()), Error);
  EXPECT_THROW(csr_linear(x, v, rp, index_tensor({0, 1}), 5, Tensor()), Error);   // x is (3, 4)
  EXPECT_THROW(csr_linear(x, v, rp, index_tensor({0, 1}), 4, Tensor::ones({3})), Error);
  EXPECT_THROW(nn::SparseLinear(4, index_tensor({0, 2, 2}), index_tensor({3, 1}), v), Error);  // unsorted
}

TEST(SparseLinear, EqualsTheDenseLayerItCameFrom) {
  Generator gen(3);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    nn::Linear dense(Tensor::uniform({11, 23}, -1, 1, gen).to(dtype),
                     Tensor::uniform({11}, -1, 1, gen).to(dtype));
    auto sparse = nn::SparseLinear::from_dense(dense, 0.5);  // keeps |w| >= 0.5
    const Tensor mask_w = sparse->to_dense();
    nn::Linear masked(mask_w.clone(), dense.bias().detach().clone());
    EXPECT_EQ(sparse->type_name(), "SparseLinear");
    EXPECT_EQ(sparse->in_features(), 23);
    EXPECT_EQ(sparse->out_features(), 11);
    EXPECT_GT(sparse->nnz(), 0);
    EXPECT_LT(sparse->nnz(), 11 * 23);
    EXPECT_EQ(sparse->num_parameters(), sparse->nnz() + 11);
    EXPECT_EQ(nn::flops_per_sample(*sparse, {23}), 2 * sparse->nnz() + 11);
    EXPECT_EQ(nn::flops_per_sample(*sparse, {4, 23}), 4 * (2 * sparse->nnz() + 11));
    EXPECT_EQ((*sparse)(Tensor::zeros({5, 23}, dtype)).shape(), (Shape{5, 11}));

    const double tol = dtype == DType::Float32 ? 1e-5 : 1e-12;
    Tensor x1 = Tensor::uniform({19, 23}, -1, 1, gen, dtype).requires_grad_();
    Tensor x2 = x1.detach().clone().requires_grad_();
    Tensor seed = Tensor::uniform({19, 11}, -1, 1, gen, dtype);
    Tensor y1 = (*sparse)(x1), y2 = masked(x2);
    const auto a = y1.to(DType::Float64).to_vector<double>(), b = y2.to(DType::Float64).to_vector<double>();
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], tol);
    y1.backward(seed);
    y2.backward(seed);
    const auto dx1 = x1.grad().to(DType::Float64).to_vector<double>();
    const auto dx2 = x2.grad().to(DType::Float64).to_vector<double>();
    for (std::size_t i = 0; i < dx1.size(); ++i) ASSERT_NEAR(dx1[i], dx2[i], tol);
    // dvalues = the dense weight gradient restricted to the kept entries.
    const auto dv = sparse->values().grad().to(DType::Float64).to_vector<double>();
    const auto dw = masked.weight().grad().to(DType::Float64).to_vector<double>();
    const auto rows = sparse->entry_rows();
    const auto cols = sparse->col_idx().to_vector<std::int64_t>();
    ASSERT_EQ(dv.size(), static_cast<std::size_t>(sparse->nnz()));
    for (std::size_t e = 0; e < dv.size(); ++e) ASSERT_NEAR(dv[e], dw[rows[e] * 23 + cols[e]], tol);
    const auto db1 = sparse->bias().grad().to(DType::Float64).to_vector<double>();
    const auto db2 = masked.bias().grad().to(DType::Float64).to_vector<double>();
    for (std::size_t i = 0; i < db1.size(); ++i) ASSERT_NEAR(db1[i], db2[i], tol);
  }
}

TEST(SparseLinear, PrunedDropsEntriesAndKeepsTheRest) {
  Generator gen(5);
  nn::Linear dense(9, 6, gen);
  auto all = nn::SparseLinear::from_dense(dense, 0.0);
  EXPECT_EQ(all->nnz(), 54);
  auto half = all->pruned([](std::int64_t e) { return e % 2 == 0; });
  EXPECT_EQ(half->nnz(), 27);
  const auto full = dense.weight().to_vector<float>(), kept = half->to_dense().to_vector<float>();
  for (std::size_t i = 0; i < full.size(); ++i) EXPECT_EQ(kept[i], i % 2 == 0 ? full[i] : 0.0f);
  Tensor x = Tensor::uniform({3, 9}, -1, 1, gen);
  const auto y = (*half)(x).to_vector<float>();
  const auto ref = nn::Linear(half->to_dense(), dense.bias().detach())(x).to_vector<float>();
  for (std::size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], ref[i], 1e-5);
}

TEST(SparseLinear, CheckpointRoundTrip) {
  Generator gen(9);
  auto model = nn::build_mlp({13, 9, 7, 5}, "relu", true, gen);
  for (const char* name : {"1", "5"}) {
    const auto& dense = dynamic_cast<const nn::Linear&>(*model->child(name));
    model->set_child(name, nn::SparseLinear::from_dense(dense, 0.15));
  }
  const nlohmann::json spec = nn::model_spec(*model);
  ASSERT_TRUE(spec.contains("sparse"));
  EXPECT_EQ(spec["sparse"].size(), 2u);  // "1" and "5"; "3" stays a dense Linear
  EXPECT_EQ(spec["sparse"]["1"]["nnz"].get<std::int64_t>(),
            dynamic_cast<const nn::SparseLinear&>(*model->child("1")).nnz());
  EXPECT_EQ(spec["sparse"]["5"]["in_features"].get<std::int64_t>(), 7);
  const auto path = std::filesystem::temp_directory_path() /
                    ("shrink_sparse_ckpt_" + std::to_string(::getpid()) + ".safetensors");
  nn::save_checkpoint(path.string(), *model);
  Generator other(123);
  nn::Checkpoint loaded = nn::load_checkpoint(path.string(), other);
  std::filesystem::remove(path);
  EXPECT_EQ(loaded.spec, spec);
  EXPECT_EQ(nn::model_spec(*loaded.model), spec);
  EXPECT_EQ(loaded.model->child("1")->type_name(), "SparseLinear");
  EXPECT_EQ(loaded.model->child("3")->type_name(), "Linear");
  EXPECT_EQ(loaded.model->num_parameters(), model->num_parameters());
  EXPECT_EQ(nn::flops_per_sample(*loaded.model, {13}), nn::flops_per_sample(*model, {13}));
  Tensor x = Tensor::uniform({4, 13}, -1, 1, gen);
  const auto a = (*model)(x).to_vector<float>(), b = (*loaded.model)(x).to_vector<float>();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]);
}
