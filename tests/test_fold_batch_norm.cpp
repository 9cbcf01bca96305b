// nn/fold_batch_norm.h: BatchNorm folded into the conv before it computes the same function
// in eval mode on every CNN family, leaves the original model untouched, folds only pairs
// whose conv output has no other reader, and refuses a model in training mode.
#include <gtest/gtest.h>

#include "core/shrink.h"
#include "nn/batch_norm.h"
#include "nn/conv.h"
#include "nn/fold_batch_norm.h"
#include "nn/identity.h"
#include "nn/models.h"
#include "nn/residual.h"
#include "nn/sequential.h"
#include "tests/test_helpers.h"

using namespace shrink;
using shrink::testing::all_close;
using shrink::testing::error_of;

namespace {

// Running statistics and affine terms far from the identity, so that a wrong fold shows.
void randomize_batch_norms(nn::Module& model, std::uint64_t seed) {
  Generator noise(seed);
  for (auto& [path, m] : model.named_modules()) {
    auto* bn = dynamic_cast<nn::BatchNorm2d*>(m);
    if (bn == nullptr) continue;
    const Shape c{bn->num_features()};
    bn->set_buffer("running_mean", Tensor::uniform(c, -0.5, 0.5, noise));
    bn->set_buffer("running_var", Tensor::uniform(c, 0.3, 2.0, noise));
    bn->set_parameter("weight", Tensor::uniform(c, 0.5, 1.5, noise));
    bn->set_parameter("bias", Tensor::uniform(c, -0.3, 0.3, noise));
  }
}

std::int64_t count_batch_norms(nn::Module& model) {
  std::int64_t n = 0;
  for (auto& [path, m] : model.named_modules()) n += dynamic_cast<nn::BatchNorm2d*>(m) != nullptr;
  return n;
}

Tensor eval_forward(nn::Module& model, const Tensor& x) {
  NoGradGuard no_grad;
  model.eval();
  return model(x);
}

struct Family {
  const char* label;
  const char* spec;
};

class FoldFamily : public ::testing::TestWithParam<Family> {};

TEST_P(FoldFamily, FoldedCopyComputesTheSameFunctionAndLeavesTheModelAlone) {
  Generator gen(5);
  auto model = nn::build_model(GetParam().spec, gen);
  randomize_batch_norms(*model, 11);
  model->eval();
  const std::int64_t batch_norms = count_batch_norms(*model);
  ASSERT_GT(batch_norms, 0);
  const nn::StateDict before = model->state_dict();
  Generator data(7);
  const Tensor x = Tensor::randn({2, 1, 32, 32}, data);
  const Tensor want = eval_forward(*model, x);

  auto folded = nn::folded_inference_copy(*model);
  ASSERT_NE(folded, nullptr);
  EXPECT_EQ(count_batch_norms(*folded), 0) << "every BatchNorm of " << GetParam().label << " follows a conv";
  EXPECT_TRUE(all_close(std::string(GetParam().label) + " folded", eval_forward(*folded, x), want, 1e-4, 1e-4));
  // The original keeps its BatchNorms and its tensors' values.
  EXPECT_EQ(count_batch_norms(*model), batch_norms);
  for (const auto& [name, t] : model->state_dict())
    EXPECT_TRUE(all_close(name, t, before.at(name), 0, 0));
}

INSTANTIATE_TEST_SUITE_P(
    Families, FoldFamily,
    ::testing::Values(Family{"resnet20", "resnet20:in_channels=1"},
                      Family{"resnet18", "resnet18:small_input=true,in_channels=1,input_size=32"},
                      Family{"mobilenetv2", "mobilenetv2:cifar_stride=true,width=0.5,in_channels=1,input_size=32"}),
    [](const auto& info) { return std::string(info.param.label); });

// Folded residual blocks with identity shortcuts run as one conv2d_residual_chain (on these
// shapes, the channels-last Winograd with the maps between convolutions kept in that layout):
// a stage of three gives the same bits as its modules called one by one (a hook on a block's ReLU
// takes that block, and only it, out of the chain; hooks on every one turn all fusion off), and
// the unfolded stage's function.
TEST(FoldBatchNorm, ChainedResidualBlocksEqualTheirModulesCalledInTurn) {
  Generator gen(3);
  auto stage = std::make_shared<nn::Sequential>();
  for (int b = 0; b < 3; ++b) stage->push_back(std::make_shared<nn::BasicBlock>(8, 8, 1, "shortcut", gen));
  randomize_batch_norms(*stage, 4);
  Generator data(9);
  const Tensor x = Tensor::randn({8, 8, 16, 16}, data);
  const Tensor want = eval_forward(*stage, x);
  ASSERT_EQ(nn::fold_batch_norms(*stage), 6);
  const Tensor chained = eval_forward(*stage, x);
  EXPECT_TRUE(all_close("chained blocks", chained, want, 1e-4, 1e-4));
  std::vector<nn::HookHandle> hooks;
  for (int b : {1, 0, 2}) {  // the middle block first: a chain of one on each side of it
    hooks.push_back((*stage)[static_cast<std::size_t>(b)]->child("relu")->register_forward_hook(
        [](nn::Module&, const Tensor&, Tensor&) {}));
    EXPECT_EQ(eval_forward(*stage, x).to_vector<float>(), chained.to_vector<float>()) << hooks.size() << " hooked";
  }
}

// Folded MobileNetV2 blocks run as one inverted_residual_chain (channels-last, the maps between
// the convolutions kept in that layout): a stage of three (an expand with the input added, no
// expand, a widening stride-2 block on an odd map) computes the unfolded stage's function, and
// what its modules compute called one by one (a hook on a block's ReLU6 takes that block, and only
// it, out of the chain). Within float rounding: the fused kernel may order a sum differently.
TEST(FoldBatchNorm, ChainedInvertedResidualBlocksMatchTheirModulesCalledInTurn) {
  Generator gen(5);
  auto stage = std::make_shared<nn::Sequential>();
  stage->push_back(std::make_shared<nn::InvertedResidual>(8, 8, 1, 3, gen));
  stage->push_back(std::make_shared<nn::InvertedResidual>(8, 8, 1, 1, gen));
  stage->push_back(std::make_shared<nn::InvertedResidual>(8, 12, 2, 6, gen));
  randomize_batch_norms(*stage, 4);
  Generator data(9);
  const Tensor x = Tensor::randn({8, 8, 15, 15}, data);
  const Tensor want = eval_forward(*stage, x);
  for (std::size_t b = 0; b < 3; ++b)  // unfolded: not a chain
    EXPECT_FALSE(std::static_pointer_cast<nn::InvertedResidual>((*stage)[b])->chain_weights()) << b;
  ASSERT_EQ(nn::fold_batch_norms(*stage), 8);
  for (std::size_t b = 0; b < 3; ++b)
    EXPECT_TRUE(std::static_pointer_cast<nn::InvertedResidual>((*stage)[b])->chain_weights()) << b;
  const Tensor chained = eval_forward(*stage, x);
  EXPECT_TRUE(all_close("chained blocks", chained, want, 1e-4, 1e-4));
  std::vector<nn::HookHandle> hooks;
  for (int b : {1, 0, 2}) {  // the middle block first: a chain of one on each side of it
    nn::Module& first_layer = *(*stage)[static_cast<std::size_t>(b)]->child("conv")->named_children().front().second;
    hooks.push_back(first_layer.child("2")->register_forward_hook([](nn::Module&, const Tensor&, Tensor&) {}));
    EXPECT_FALSE(std::static_pointer_cast<nn::InvertedResidual>((*stage)[static_cast<std::size_t>(b)])->chain_weights());
    EXPECT_TRUE(all_close(std::to_string(hooks.size()) + " hooked", eval_forward(*stage, x), chained, 1e-5, 1e-5));
  }
}

// A pruned depthwise conv, as a checkpoint load makes it: built at the spec's width, then its
// weight replaced by a narrower one. The fold must keep it depthwise at the new width.
TEST(FoldBatchNorm, NarrowedDepthwiseConvStaysDepthwise) {
  Generator gen(4);
  auto dw = std::make_shared<nn::Conv2d>(6, 6, nn::Conv2dGeometry{3, 3, 1, 1, 1, 6}, false, gen);
  auto bn = std::make_shared<nn::BatchNorm2d>(6);
  nn::Sequential seq({dw, bn});
  const Tensor w = Tensor::randn({4, 1, 3, 3}, gen);
  seq.load_state_dict({{"0.weight", w}, {"1.weight", Tensor::ones({4})}, {"1.bias", Tensor::zeros({4})},
                       {"1.running_mean", Tensor::zeros({4})}, {"1.running_var", Tensor::ones({4})}},
                      /*strict=*/true, nn::Module::ShapeMismatch::Adopt);
  randomize_batch_norms(seq, 5);
  seq.eval();
  Generator data(6);
  const Tensor x = Tensor::randn({2, 4, 5, 5}, data);
  const Tensor want = eval_forward(seq, x);
  EXPECT_EQ(nn::fold_batch_norms(seq), 1);
  auto folded = std::dynamic_pointer_cast<nn::Conv2d>(seq[0]);
  ASSERT_NE(folded, nullptr);
  EXPECT_TRUE(folded->is_depthwise());
  EXPECT_EQ(folded->groups(), 4);
  EXPECT_TRUE(all_close("narrowed depthwise folded", eval_forward(seq, x), want, 1e-5, 1e-4));
}

TEST(FoldBatchNorm, BottleneckWithProjectionFoldsAllFourPairs) {
  Generator gen(2);
  nn::Bottleneck block(8, 4, 2, "downsample", gen);
  randomize_batch_norms(block, 3);
  block.eval();
  Generator data(4);
  const Tensor x = Tensor::randn({2, 8, 9, 9}, data);  // odd size: the stride-2 edge
  const Tensor want = eval_forward(block, x);
  EXPECT_EQ(nn::fold_batch_norms(block), 4);  // conv1..3 and the projection's (conv, bn)
  EXPECT_EQ(count_batch_norms(block), 0);
  EXPECT_TRUE(all_close("bottleneck folded", eval_forward(block, x), want, 1e-5, 1e-4));
}

TEST(FoldBatchNorm, ConvWithBiasAndDoublePrecisionFoldsExactly) {
  Generator gen(6);
  auto conv = std::make_shared<nn::Conv2d>(3, 5, nn::Conv2dGeometry{3, 3, 1, 1, 1, 1}, /*bias=*/true, gen);
  conv->set_parameter("weight", conv->weight().to(DType::Float64));
  conv->set_parameter("bias", conv->bias().to(DType::Float64));
  auto bn = std::make_shared<nn::BatchNorm2d>(5);
  nn::Sequential seq({conv, bn});
  randomize_batch_norms(seq, 8);
  for (auto& [name, t] : seq.named_buffers()) seq.set_buffer(name, t.to(DType::Float64));
  for (auto& [name, t] : seq.named_parameters()) seq.set_parameter(name, t.to(DType::Float64));
  seq.eval();
  Generator data(9);
  const Tensor x = Tensor::randn({2, 3, 7, 6}, data).to(DType::Float64);
  const Tensor want = eval_forward(seq, x);
  EXPECT_EQ(nn::fold_batch_norms(seq), 1);
  EXPECT_EQ(seq[1]->type_name(), "Identity");
  EXPECT_TRUE(all_close("conv+bias folded", eval_forward(seq, x), want, 1e-12, 1e-12));
}

// A conv whose output also feeds something besides its BatchNorm: the container declares no
// pair, so nothing is folded (folding would change what the other reader sees).
class TwoReaders : public nn::Module {
 public:
  explicit TwoReaders(Generator& gen) {
    register_module("conv", std::make_shared<nn::Conv2d>(2, 3, nn::Conv2dGeometry{1, 1, 1, 0, 1, 1}, false, gen));
    register_module("bn", std::make_shared<nn::BatchNorm2d>(3));
  }
  std::string type_name() const override { return "TwoReaders"; }

 protected:
  Tensor forward(const Tensor& x) override {
    const Tensor y = (*child("conv"))(x);
    return (*child("bn"))(y) + y;
  }
};

TEST(FoldBatchNorm, ConvOutputWithAnotherReaderIsNotFolded) {
  Generator gen(1);
  TwoReaders m(gen);
  randomize_batch_norms(m, 2);
  m.eval();
  Generator data(3);
  const Tensor x = Tensor::randn({1, 2, 4, 4}, data);
  const Tensor want = eval_forward(m, x);
  EXPECT_EQ(nn::fold_batch_norms(m), 0);
  EXPECT_TRUE(all_close("unfolded", eval_forward(m, x), want, 0, 0));
  EXPECT_EQ(nn::folded_inference_copy(m), nullptr);  // hand-assembled: no spec to copy from
}

TEST(FoldBatchNorm, TrainingModeIsAnErrorNamingTheLayer) {
  Generator gen(1);
  auto model = nn::build_model("resnet20:in_channels=1", gen);
  model->train();
  const std::string e = error_of([&] { nn::fold_batch_norms(*model); });
  EXPECT_NE(e.find("bn1"), std::string::npos) << e;
  EXPECT_NE(e.find("training mode"), std::string::npos) << e;
}

}  // namespace

// inference_copy: the deployed form of any built model, folded where there is a BatchNorm to fold
// and a plain eval-mode copy where there is none (folded_inference_copy is null there); either
// way a copy, so a change to the model afterwards (pruning) leaves it computing the dense model
// (shrink-prune times the two in turns).
TEST(FoldBatchNorm, InferenceCopyIsTheDeployedFormAndOutlivesChangesToTheModel) {
  Generator gen(31), data(32);
  for (const char* spec : {"mlp:64-32-10", "resnet20:in_channels=1"}) {
    auto model = nn::build_model(spec, gen);
    randomize_batch_norms(*model, 33);
    model->eval();
    const Tensor x = std::string(spec).starts_with("mlp") ? Tensor::randn({3, 64}, data)
                                                          : Tensor::randn({2, 1, 32, 32}, data);
    NoGradGuard no_grad;
    const Tensor before = (*model)(x);
    const std::shared_ptr<nn::Module> copy = nn::inference_copy(*model);
    ASSERT_NE(copy, nullptr) << spec;
    EXPECT_EQ(nn::folded_inference_copy(*model) == nullptr, count_batch_norms(*model) == 0) << spec;
    EXPECT_EQ(count_batch_norms(*copy), 0) << spec;
    EXPECT_TRUE(all_close(std::string(spec) + " copy", (*copy)(x), before, 1e-4, 1e-4));
    for (Tensor& p : model->parameters()) p.copy_(Tensor::zeros(p.shape()));  // the model changes
    EXPECT_TRUE(all_close(std::string(spec) + " copy after the model changed", (*copy)(x), before, 1e-4, 1e-4));
  }
}
