// nn::SparseConv2d and the csr_conv2d kernels at real sizes (the op's float64 gradients and
// forward on odd shapes are rows of tests/op_table.h): several image chunks against the dense
// conv of the same weight, forward and backward; the layer from a dense conv (grouped and
// depthwise), its crafted-structure errors, and unstructured SAP on a CNN (LeNet-5, ResNet-20):
// convs become SparseConv2d, equal to the masked dense model, reload from a checkpoint and
// rewind to their initial values.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <vector>

#include "core/shrink.h"
#include "nn/checkpoint.h"
#include "nn/conv.h"
#include "nn/models.h"
#include "nn/sparse_conv.h"
#include "prune/sap.h"

using namespace shrink;

namespace {

// A conv with about half of its weights zeroed at random (entries the sparse layer drops).
std::shared_ptr<nn::Conv2d> half_zero_conv(std::int64_t in, std::int64_t out, const nn::Conv2dGeometry& g,
                                           std::uint64_t seed) {
  Generator gen(seed);
  nn::Conv2d dense(in, out, g, true, gen);
  std::vector<float> w = dense.weight().to_vector<float>();
  std::mt19937_64 rng(seed);
  for (float& v : w)
    if (rng() % 2) v = 0;
  return std::make_shared<nn::Conv2d>(Tensor::from_vector(w, dense.weight().shape()), dense.bias().clone(), g);
}

std::shared_ptr<nn::SparseConv2d> nonzeros_of(const nn::Conv2d& dense) {
  return nn::SparseConv2d::from_dense(dense, [](std::int64_t, std::int64_t, double v) { return v != 0; });
}

void expect_close(const Tensor& a, const Tensor& b, double tol, const char* what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const auto x = a.to(DType::Float64).to_vector<double>(), y = b.to(DType::Float64).to_vector<double>();
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  EXPECT_LE(worst, tol) << what;
}

}  // namespace

// 40 images of 16x32x32 unfold to 40 x 147k floats: more than one chunk of the kernels.
TEST(SparseConv2d, EqualsTheDenseConvOverSeveralImageChunks) {
  nn::Conv2dGeometry g;
  g.kernel_h = g.kernel_w = 3, g.padding = 1;
  auto dense = half_zero_conv(16, 12, g, 1);
  auto sparse = nonzeros_of(*dense);
  EXPECT_NEAR(sparse->density(), 0.5, 0.05);
  Generator gen(2);
  Tensor x = Tensor::uniform({40, 16, 32, 32}, -1, 1, gen);
  Tensor xs = x.clone(), xd = x.clone();
  xs.requires_grad_();
  xd.requires_grad_();
  Tensor ys = (*sparse)(xs), yd = (*dense)(xd);
  expect_close(ys, yd, 1e-4, "forward");
  Tensor seed = Tensor::uniform(ys.shape(), -1, 1, gen);
  sum(ys * seed).backward();
  sum(yd * seed).backward();
  expect_close(xs.grad(), xd.grad(), 1e-4, "input gradient");
  expect_close(sparse->bias().grad(), dense->bias().grad(), 1e-2, "bias gradient");
  // The stored values' gradient is the dense weight gradient read at their places.
  const auto dw = dense->weight().grad().to(DType::Float64).to_vector<double>();
  const auto dv = sparse->values().grad().to(DType::Float64).to_vector<double>();
  const auto offsets = sparse->dense_offsets();
  for (std::size_t e = 0; e < dv.size(); ++e) EXPECT_NEAR(dv[e], dw[offsets[e]], 1e-2 + 1e-4 * std::abs(dw[offsets[e]]));
}

TEST(SparseConv2d, GroupedStridedAndDepthwiseLayersMatchTheirDenseConv) {
  struct Case {
    std::int64_t in, out, k, stride, padding, dilation, groups;
  };
  for (const Case c : {Case{6, 4, 3, 2, 1, 1, 2}, Case{8, 8, 3, 1, 1, 1, 8}, Case{5, 7, 5, 1, 2, 2, 1},
                       Case{4, 6, 1, 2, 0, 1, 2}}) {
    nn::Conv2dGeometry g;
    g.kernel_h = g.kernel_w = c.k, g.stride = c.stride, g.padding = c.padding, g.dilation = c.dilation,
    g.groups = c.groups;
    auto dense = half_zero_conv(c.in, c.out, g, 3);
    auto sparse = nonzeros_of(*dense);
    SCOPED_TRACE(sparse->extra_repr());
    Generator gen(4);
    Tensor x = Tensor::uniform({3, c.in, 11, 9}, -1, 1, gen);
    expect_close((*sparse)(x), (*dense)(x), 1e-5, "forward");
    expect_close(sparse->to_dense(), dense->weight(), 0, "to_dense");
    // Keeping entries by position shrinks the layer and still equals the masked dense conv.
    auto fewer = sparse->pruned([](std::int64_t e) { return e % 3 != 0; });
    EXPECT_EQ(fewer->nnz(), sparse->nnz() - (sparse->nnz() + 2) / 3);
    auto masked = std::make_shared<nn::Conv2d>(fewer->to_dense(), fewer->bias().clone(), g);
    expect_close((*fewer)(x), (*masked)(x), 1e-5, "pruned forward");
  }
}

TEST(SparseConv2d, CountsTwoFlopsPerStoredWeightAndPosition) {
  nn::Conv2dGeometry g;
  g.kernel_h = g.kernel_w = 3, g.padding = 1, g.stride = 2;
  auto sparse = nonzeros_of(*half_zero_conv(5, 6, g, 5));
  Generator gen(6);
  Tensor x = Tensor::uniform({2, 5, 9, 9}, -1, 1, gen);
  FlopCounter counter;
  Tensor y = (*sparse)(x);
  const std::int64_t positions = y.size(2) * y.size(3);
  EXPECT_EQ(counter.count(), 2 * (2 * positions * sparse->nnz()) + 2 * 6 * positions);
}

TEST(SparseConv2d, CraftedStructuresAreErrorsNamingWhatIsWrong) {
  nn::Conv2dGeometry g;
  g.kernel_h = g.kernel_w = 3, g.groups = 2;
  const auto t = [](std::vector<std::int64_t> v) {
    return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())});
  };
  // Output channel 1 (group 1 of 2, 4 input channels -> columns 18..35) reads column 3.
  try {
    nn::SparseConv2d layer(4, g, t({0, 1, 2}), t({0, 3}), Tensor::zeros({2}));
    FAIL() << "a column outside its group was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("col_idx[1] = 3 of output channel 1 lies outside its group 1"),
              std::string::npos)
        << e.what();
  }
  try {
    nn::SparseConv2d layer(4, g, t({0, 2, 1}), t({0, 20}), Tensor::zeros({2}));
    FAIL() << "a decreasing row_ptr was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row_ptr"), std::string::npos) << e.what();
  }
  try {
    nn::SparseConv2d layer(4, g, t({0, 1, 2}), t({0, 36}), Tensor::zeros({2}));
    FAIL() << "a column past in_channels kh kw was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("col_idx[1] = 36"), std::string::npos) << e.what();
  }
}

TEST(SparseConv2d, UnstructuredSapOnLenet5StoresEveryWeightLayerSparseAndReloads) {
  Generator gen(7);
  auto model = nn::build_model("lenet5", gen);
  nn::StateDict init;
  for (auto& [k, v] : model->state_dict()) init[k] = v.detach().clone();
  const prune::RoundReport report = prune::sap_unstructured_round(*model, {}, prune::Scope::Layer);
  EXPECT_LT(report.remaining, report.remaining_before);
  std::int64_t convs = 0;
  for (const auto& [name, m] : model->named_modules()) {
    EXPECT_EQ(dynamic_cast<const nn::Conv2d*>(m), nullptr) << name << " is still a dense conv";
    if (const auto* s = dynamic_cast<const nn::SparseConv2d*>(m)) {
      ++convs;
      EXPECT_EQ(report.layer_remaining.at(name), s->nnz());
      // Equal to the masked dense conv.
      Tensor x = Tensor::uniform({2, s->in_channels(), 12, 12}, -1, 1, gen);
      nn::Conv2d masked(s->to_dense(), s->bias().clone(), s->geometry());
      expect_close((*const_cast<nn::SparseConv2d*>(s))(x), masked(x), 1e-5, name.c_str());
    }
  }
  EXPECT_EQ(convs, 2);
  model->eval();
  Tensor x = Tensor::uniform({4, 1, 28, 28}, -1, 1, gen);
  const Tensor before = (*model)(x);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sparse_conv_" + std::to_string(getpid()) + ".safetensors"))
                               .string();
  nn::save_checkpoint(path, *model);
  Generator gen2(99);
  auto loaded = nn::load_checkpoint(path, gen2).model;
  std::filesystem::remove(path);
  loaded->eval();
  expect_close((*loaded)(x), before, 0, "reloaded outputs");
  EXPECT_EQ(nn::model_spec(*loaded), nn::model_spec(*model));
  // A second round rewinds the survivors to the initial dense weights at their places.
  prune::sap_unstructured_round(*model, init, prune::Scope::Neuron);
  const auto& conv2 = dynamic_cast<const nn::SparseConv2d&>(*model->child("conv2"));
  const auto w0 = init.at("conv2.weight").to(DType::Float64).to_vector<double>();
  const auto v = conv2.values().to(DType::Float64).to_vector<double>();
  const auto offsets = conv2.dense_offsets();
  for (std::size_t e = 0; e < v.size(); ++e) EXPECT_EQ(v[e], static_cast<double>(static_cast<float>(w0[offsets[e]])));
}

TEST(SparseConv2d, UnstructuredSapOnResnet20KeepsTheResidualShapes) {
  Generator gen(8);
  auto model = nn::build_model("resnet20", gen);
  prune::sap_unstructured_round(*model, {}, prune::Scope::Global);
  std::int64_t sparse = 0;
  for (const auto& [name, m] : model->named_modules()) sparse += dynamic_cast<const nn::SparseConv2d*>(m) != nullptr;
  EXPECT_EQ(sparse, 19 + 2);  // the stem, 18 block convs, 2 projection shortcuts
  model->eval();
  Tensor x = Tensor::uniform({2, 3, 32, 32}, -1, 1, gen);
  EXPECT_EQ((*model)(x).shape(), (Shape{2, 10}));
}
