// core/shape_only.h: in shape-only mode ops still check arguments, size outputs, count FLOPs
// and record autograd nodes, memory still moves, and value checks pass without reading;
// leaving the scope restores real execution.
#include <gtest/gtest.h>

#include "core/flop_counter.h"
#include "core/shape_only.h"
#include "core/shrink.h"
#include "nn/flops.h"
#include "nn/models.h"
#include "tests/test_helpers.h"

using namespace shrink;
using shrink::testing::error_of;

namespace {

TEST(ShapeOnly, OpsSizeOutputsCountFlopsAndRecordTheGraph) {
  Generator gen(1);
  const Tensor x = Tensor::randn({2, 3, 9, 7}, gen).requires_grad_(true);
  const Tensor w = Tensor::randn({4, 3, 3, 3}, gen);
  std::int64_t real_flops = 0, shape_flops = 0;
  {
    FlopCounter c;
    (void)conv2d(x, w, Tensor(), {2, 2, 1, 1, 1, 1, 1});
    real_flops = c.count();
  }
  Tensor y;
  {
    ShapeOnlyGuard shapes;
    FlopCounter c;
    y = relu(conv2d(x, w, Tensor(), {2, 2, 1, 1, 1, 1, 1}));
    shape_flops = c.count();
  }
  EXPECT_EQ(y.shape(), (Shape{2, 4, 5, 4}));
  EXPECT_EQ(shape_flops, real_flops);
  EXPECT_TRUE(y.requires_grad()) << "the autograd node is recorded";
}

TEST(ShapeOnly, ArgumentChecksStillThrowAndMemoryStillMoves) {
  ShapeOnlyGuard shapes;
  Generator gen(2);
  const Tensor a = Tensor::randn({2, 3}, gen), b = Tensor::randn({4, 5}, gen);
  const std::string e = error_of([&] { (void)matmul(a, b); });
  EXPECT_NE(e.find("matmul"), std::string::npos) << e;
  const std::vector<float> values{1.5f, -2.0f, 3.25f};
  EXPECT_EQ(Tensor::from_vector(values, {3}).to_vector<float>(), values);
}

TEST(ShapeOnly, ValueChecksPassWithoutReadingAndScopesNest) {
  const Tensor table = Tensor::zeros({3, 2});
  const Tensor bad = Tensor::from_vector(std::vector<std::int64_t>{0, 7}, {2});
  EXPECT_FALSE(error_of([&] { (void)index_select(table, 0, bad); }).empty());
  EXPECT_FALSE(kernels::shape_only());
  {
    ShapeOnlyGuard outer;
    EXPECT_EQ(index_select(table, 0, bad).shape(), (Shape{2, 2}));
    {
      ShapeOnlyGuard inner;
      EXPECT_TRUE(kernels::shape_only());
    }
    EXPECT_TRUE(kernels::shape_only());
  }
  EXPECT_FALSE(kernels::shape_only());
  EXPECT_FALSE(error_of([&] { (void)index_select(table, 0, bad); }).empty()) << "real execution is back";
}

TEST(ShapeOnly, FlopsPerSampleEqualsTheCountOfARealForward) {
  Generator gen(3);
  auto model = nn::build_model("mobilenetv2:cifar_stride=true,width=0.5,in_channels=1,input_size=32", gen);
  model->eval();
  std::int64_t real = 0;
  {
    NoGradGuard no_grad;
    FlopCounter c;
    (*model)(Tensor::zeros({1, 1, 32, 32}));
    real = c.count();
  }
  EXPECT_EQ(nn::flops_per_sample(*model, {1, 32, 32}), real);
}

}  // namespace
