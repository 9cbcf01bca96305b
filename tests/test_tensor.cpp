// Tensor: factories, metadata, conversions, copies and the argument checks around them.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/shrink.h"
#include "tests/test_helpers.h"

namespace shrink {
namespace {

using testing::error_of;

TEST(Tensor, FactoriesFillShapeDtypeDevice) {
  Tensor z = Tensor::zeros({3, 5, 7});
  EXPECT_EQ(z.shape(), (Shape{3, 5, 7}));
  EXPECT_EQ(z.dim(), 3);
  EXPECT_EQ(z.numel(), 105);
  EXPECT_EQ(z.size(-1), 7);
  EXPECT_EQ(z.dtype(), DType::Float32);
  EXPECT_TRUE(z.device().is_cpu());
  EXPECT_EQ(z.nbytes(), 105u * 4);
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(105, 0.f));
  EXPECT_EQ(Tensor::ones({2, 3}, DType::Float64).to_vector<double>(), std::vector<double>(6, 1.0));
  EXPECT_EQ(Tensor::full({4}, -2.5, DType::Float64).to_vector<double>(), std::vector<double>(4, -2.5));
  EXPECT_EQ(Tensor::full({2}, 7, DType::Int64).to_vector<std::int64_t>(), (std::vector<std::int64_t>{7, 7}));
  Tensor s = Tensor::scalar(3.5, DType::Float64);
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 3.5);
  Tensor a = Tensor::arange(5);
  EXPECT_EQ(a.dtype(), DType::Int64);
  EXPECT_EQ(a.to_vector<std::int64_t>(), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(Tensor::arange(3, DType::Float32).to_vector<float>(), (std::vector<float>{0, 1, 2}));
  EXPECT_EQ(Tensor::arange(0).numel(), 0);
  Tensor e = Tensor::empty({0, 4});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.to_vector<float>().empty());
  EXPECT_FALSE(Tensor().defined());
  EXPECT_TRUE(z.defined());
}

TEST(Tensor, FactoryErrors) {
  EXPECT_NE(error_of([] { Tensor::zeros({2, -1}); }).find("(2, -1)"), std::string::npos);
  EXPECT_NE(error_of([] { Tensor::arange(-1); }).find("arange"), std::string::npos);
  Generator gen(1);
  EXPECT_NE(error_of([&] { Tensor::randn({2}, gen, DType::Int64); }).find("randn"), std::string::npos);
  EXPECT_NE(error_of([&] { Tensor::uniform({2}, 1.0, 0.0, gen); }).find("uniform"), std::string::npos);
  EXPECT_NE(error_of([] { Tensor().shape(); }).find("undefined"), std::string::npos);
}

TEST(Tensor, RandomFactoriesAreSeededAndAdvance) {
  Generator g1(3), g2(3);
  Tensor a = Tensor::randn({1001}, g1), b = Tensor::randn({1001}, g2);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  Tensor c = Tensor::randn({1001}, g1);  // the generator advanced
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
  Tensor u = Tensor::uniform({2000}, -0.5, 0.25, g1, DType::Float64);
  for (double v : u.to_vector<double>()) {
    ASSERT_GE(v, -0.5);
    ASSERT_LT(v, 0.25);
  }
  EXPECT_EQ(Generator(9).next_u64(), Generator(9).next_u64());
  Generator h(4);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_LT(h.next_below(7), 7u);
    const double d = h.next_double();
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 1.0);
  }
}

TEST(Tensor, FromVectorChecksSize) {
  Tensor t = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(t.dtype(), DType::Float64);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.data<double>()[4], 5.0);
  const std::string msg = error_of([] { Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}); });
  EXPECT_NE(msg.find("from_vector"), std::string::npos) << msg;
  EXPECT_NE(msg.find("3 values"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(2, 2)"), std::string::npos) << msg;
}

TEST(Tensor, FromVectorScalarShapeTakesOneValue) {
  EXPECT_EQ(Tensor::from_vector(std::vector<std::int64_t>{4}, {}).item(), 4.0);
  EXPECT_THROW(Tensor::from_vector(std::vector<float>{}, {}), Error);
  EXPECT_EQ(Tensor::from_vector(std::vector<float>{}, {0, 3}).numel(), 0);
}

TEST(Tensor, ReshapeInfersAndChecks) {
  Tensor x = Tensor::from_vector(std::vector<float>(24, 1.f), {2, 3, 4});
  EXPECT_EQ(reshape(x, {-1}).shape(), Shape{24});
  EXPECT_EQ(reshape(x, {4, -1}).shape(), (Shape{4, 6}));
  EXPECT_EQ(reshape(x, {2, -1, 3}).shape(), (Shape{2, 4, 3}));
  EXPECT_EQ(reshape(x, {1, 24, 1}).shape(), (Shape{1, 24, 1}));
  Tensor v = reshape(x, {6, 4});
  EXPECT_EQ(v.raw_data(), x.raw_data());  // a view
  v.data<float>()[0] = 5.f;
  EXPECT_EQ(x.data<float>()[0], 5.f);
  EXPECT_EQ(x.shape(), (Shape{2, 3, 4}));  // the source keeps its shape
  std::string msg = error_of([&] { reshape(x, {5, -1}); });
  EXPECT_NE(msg.find("reshape"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(2, 3, 4)"), std::string::npos) << msg;
  msg = error_of([&] { reshape(x, {-1, -1}); });
  EXPECT_NE(msg.find("only one"), std::string::npos) << msg;
  msg = error_of([&] { reshape(x, {5, 5}); });
  EXPECT_NE(msg.find("24 elements"), std::string::npos) << msg;
  EXPECT_NE(msg.find("25 elements"), std::string::npos) << msg;
  EXPECT_THROW(reshape(x, {-2, -12}), Error);
  EXPECT_THROW(reshape(x, {0, -1}), Error);
}

TEST(Tensor, ItemNeedsOneElement) {
  EXPECT_EQ(Tensor::full({1, 1}, 2.5).item(), 2.5);
  EXPECT_EQ(Tensor::full({1}, -3, DType::Int64).item(), -3.0);
  const std::string msg = error_of([] { Tensor::zeros({2, 2}).item(); });
  EXPECT_NE(msg.find("item"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(2, 2)"), std::string::npos) << msg;
  EXPECT_THROW(Tensor::zeros({0}).item(), Error);
}

TEST(Tensor, ToDtypeConverts) {
  Tensor x = Tensor::from_vector(std::vector<float>{1.5f, -2.75f, 3.f}, {3});
  Tensor d = x.to(DType::Float64);
  EXPECT_EQ(d.dtype(), DType::Float64);
  EXPECT_EQ(d.shape(), x.shape());
  EXPECT_EQ(d.to_vector<double>(), (std::vector<double>{1.5, -2.75, 3.0}));
  EXPECT_EQ(x.to(DType::Int64).to_vector<std::int64_t>(), (std::vector<std::int64_t>{1, -2, 3}));
  EXPECT_EQ(Tensor::arange(3).to(DType::Float32).to_vector<float>(), (std::vector<float>{0, 1, 2}));
  EXPECT_NE(d.raw_data(), x.raw_data());
  EXPECT_EQ(x.to(DType::Float32).raw_data(), x.raw_data());  // same dtype: the same tensor
  EXPECT_EQ(x.to(Device::cpu()).raw_data(), x.raw_data());
}

TEST(Tensor, DataAndToVectorCheckDtype) {
  Tensor x = Tensor::zeros({2});
  EXPECT_NE(error_of([&] { x.data<double>(); }).find("float32"), std::string::npos);
  EXPECT_NE(error_of([&] { x.to_vector<std::int64_t>(); }).find("int64"), std::string::npos);
}

TEST(Tensor, CloneIsIndependent) {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}).requires_grad_();
  Tensor c = x.clone();
  EXPECT_NE(c.raw_data(), x.raw_data());
  EXPECT_EQ(c.to_vector<float>(), x.to_vector<float>());
  EXPECT_FALSE(c.requires_grad());
  EXPECT_EQ(c.grad_fn(), nullptr);
  c.data<float>()[0] = 9.f;
  EXPECT_EQ(x.data<float>()[0], 1.f);
  x.data<float>()[1] = 8.f;
  EXPECT_EQ(c.data<float>()[1], 2.f);
  // A handle copy shares data (PyTorch semantics).
  Tensor h = x;
  h.data<float>()[2] = 7.f;
  EXPECT_EQ(x.data<float>()[2], 7.f);
}

TEST(Tensor, CopyAndFillInPlace) {
  Tensor dst = Tensor::zeros({2, 3});
  void* storage = dst.raw_data();
  Tensor src = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  dst.copy_(src);
  EXPECT_EQ(dst.raw_data(), storage);  // in place
  EXPECT_EQ(dst.to_vector<float>(), src.to_vector<float>());
  src.data<float>()[0] = 100.f;  // independent afterwards
  EXPECT_EQ(dst.to_vector<float>()[0], 1.f);
  std::string msg = error_of([&] { dst.copy_(Tensor::zeros({3, 2})); });
  EXPECT_NE(msg.find("copy_"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(3, 2)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(2, 3)"), std::string::npos) << msg;
  msg = error_of([&] { dst.copy_(Tensor::zeros({2, 3}, DType::Float64)); });
  EXPECT_NE(msg.find("float64"), std::string::npos) << msg;
  dst.fill_(-1.5);
  EXPECT_EQ(dst.to_vector<float>(), std::vector<float>(6, -1.5f));
}

TEST(Tensor, RequiresGradAndGradBookkeeping) {
  Tensor x = Tensor::zeros({2, 2});
  EXPECT_FALSE(x.requires_grad());
  EXPECT_TRUE(x.requires_grad_().requires_grad());
  EXPECT_FALSE(x.requires_grad_(false).requires_grad());
  const std::string msg = error_of([] { Tensor::arange(3).requires_grad_(); });
  EXPECT_NE(msg.find("int64"), std::string::npos) << msg;
  Tensor::arange(3).requires_grad_(false);  // turning it off is fine
  EXPECT_FALSE(x.grad().defined());
  x.set_grad(Tensor::ones({2, 2}));
  EXPECT_EQ(x.grad().to_vector<float>(), std::vector<float>(4, 1.f));
  EXPECT_THROW(x.set_grad(Tensor::ones({4})), Error);
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Device, ParseAndNames) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:2"), Device::cuda(2));
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  EXPECT_THROW(Device::parse("gpu"), Error);
  EXPECT_THROW(Device::parse("cuda:"), Error);
  EXPECT_THROW(Device::parse("cuda:x"), Error);
}

TEST(Shape, HelpersAndMessages) {
  EXPECT_EQ(shape_str({}), "()");
  EXPECT_EQ(shape_str({3}), "(3,)");
  EXPECT_EQ(shape_str({2, 3}), "(2, 3)");
  EXPECT_EQ(numel({}), 1);
  EXPECT_EQ(numel({3, 0}), 0);
  EXPECT_EQ(broadcast_shapes("t", {3, 1, 5}, {4, 1}), (Shape{3, 4, 5}));
  EXPECT_EQ(contiguous_strides({3, 5, 7}), (std::vector<std::int64_t>{35, 7, 1}));
  EXPECT_EQ(normalize_axis("t", -1, 3), 2);
  const std::string msg = error_of([] { broadcast_shapes("myop", {2, 3}, {4}); });
  EXPECT_NE(msg.find("myop"), std::string::npos);
  EXPECT_NE(msg.find("(2, 3)"), std::string::npos);
  EXPECT_NE(msg.find("(4,)"), std::string::npos);
}

TEST(Tensor, CudaWithoutGpuIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present; covered by the CUDA suites";
  EXPECT_THROW(Tensor::zeros({2}, DType::Float32, Device::cuda()), Error);
}

}  // namespace
}  // namespace shrink

namespace shrink {
namespace {

// With fills off, random tensors advance the stream as usual but are not written, so a
// model built only for its shapes (or to be overwritten by a checkpoint) skips the work.
TEST(Generator, FillsOffAdvancesTheStreamWithoutWriting) {
  Generator on(3), off(3);
  const Tensor a = Tensor::uniform({5, 7}, -1, 1, on);
  const Tensor b = Tensor::randn({9}, on);
  {
    FillsOff guard(off);
    Tensor::uniform({5, 7}, -1, 1, off);
    Tensor::randn({9}, off);
    EXPECT_FALSE(off.fills());
  }
  EXPECT_TRUE(off.fills());
  EXPECT_EQ(on.offset(), off.offset());
  // Back on: the next draws agree value for value.
  const Tensor c = Tensor::uniform({4}, 0, 1, on), d = Tensor::uniform({4}, 0, 1, off);
  EXPECT_EQ(c.to_vector<float>(), d.to_vector<float>());
  (void)a;
  (void)b;
}

}  // namespace
}  // namespace shrink
