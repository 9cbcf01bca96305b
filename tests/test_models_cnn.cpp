// The CNN families of nn/models_cnn.h: shapes, PyTorch parameter names, parameter and FLOP
// counts against hand counts and published figures, save -> load -> forward.
#include <gtest/gtest.h>

#include <set>

#include <nlohmann/json.hpp>

#include "core/shrink.h"
#include "nn/checkpoint.h"
#include "nn/conv_fusion.h"
#include "nn/fold_batch_norm.h"
#include "nn/flops.h"
#include "nn/models.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::nn;

namespace {

// How many nodes of the autograd graph behind `t` record the op `op`.
std::int64_t graph_ops(const Tensor& t, const std::string& op) {
  std::vector<const Node*> stack = {t.grad_fn().get()};
  std::set<const Node*> seen;
  std::int64_t count = 0;
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (!n || !seen.insert(n).second) continue;
    count += op == n->op;
    for (const Edge& e : n->edges) stack.push_back(e.node.get());
  }
  return count;
}

std::shared_ptr<Module> build(const nlohmann::json& spec, std::uint64_t seed = 1) {
  Generator gen(seed);
  return build_from_spec(spec, gen);
}

// conv k x k (no bias) + its BatchNorm (weight, bias): the parameters of one conv_bn.
std::int64_t conv_bn(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t groups = 1) {
  return out * (in / groups) * k * k + 2 * out;
}

}  // namespace

TEST(ModelsCnn, EveryFamilyMapsAnImageBatchToLogits) {
  const std::vector<nlohmann::json> specs = {
      {{"model", "lenet5"}},
      {{"model", "resnet20"}, {"in_channels", 1}},
      {{"model", "resnet32"}, {"input_size", 16}},
      {{"model", "resnet18"}, {"small_input", true}, {"input_size", 32}, {"classes", 7}},
      {{"model", "resnet50"}, {"small_input", true}, {"input_size", 16}},
      {{"model", "mobilenetv2"}, {"cifar_stride", true}, {"width", 0.5}},
  };
  for (const auto& spec : specs) {
    SCOPED_TRACE(spec.dump());
    auto model = build(spec);
    const Shape sample = input_shape(spec);
    Shape batch = {2};
    batch.insert(batch.end(), sample.begin(), sample.end());
    const std::int64_t classes = spec.value("classes", 10);
    model->eval();
    Generator data(3);
    EXPECT_EQ((*model)(Tensor::randn(batch, data)).shape(), (Shape{2, classes}));
  }
}

TEST(ModelsCnn, ParameterNamesFollowThePyTorchCode) {
  auto resnet20 = build({{"model", "resnet20"}});
  for (const char* name : {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.shortcut.0.weight",
                           "layer2.0.shortcut.1.bias", "layer3.2.bn2.weight", "linear.weight"})
    EXPECT_TRUE(resnet20->has_parameter(name) || resnet20->has_buffer(name)) << name;
  auto resnet18 = build({{"model", "resnet18"}});
  for (const char* name : {"conv1.weight", "layer1.1.conv2.weight", "layer2.0.downsample.0.weight",
                           "layer4.1.bn2.running_mean", "fc.bias"})
    EXPECT_TRUE(resnet18->has_parameter(name) || resnet18->has_buffer(name)) << name;
  auto mobilenet = build({{"model", "mobilenetv2"}});
  for (const char* name : {"features.0.0.weight", "features.0.1.weight", "features.1.conv.0.0.weight",
                           "features.1.conv.1.weight", "features.2.conv.0.0.weight", "features.2.conv.1.0.weight",
                           "features.2.conv.2.weight", "features.2.conv.3.running_var", "features.18.0.weight",
                           "classifier.1.weight"})
    EXPECT_TRUE(mobilenet->has_parameter(name) || mobilenet->has_buffer(name)) << name;
  EXPECT_EQ(mobilenet->parameter("features.2.conv.1.0.weight").shape(), (Shape{96, 1, 3, 3}));  // depthwise
  auto lenet = build({{"model", "lenet5"}});
  EXPECT_EQ(lenet->parameter("fc1.weight").shape(), (Shape{120, 400}));
}

TEST(ModelsCnn, ParameterCountsMatchHandCountsAndPublishedFigures) {
  // LeNet-5 on 28x28 (conv1 padded): 156 + 2416 + 48120 + 10164 + 850.
  EXPECT_EQ(build({{"model", "lenet5"}})->num_parameters(), 61706);
  // CIFAR ResNet-20 with option-A shortcuts has 0.27M parameters (He et al. 2016, Table 6);
  // counted by hand: stem, 9 blocks of two 3x3 conv_bn, linear 64 -> 10.
  std::int64_t resnet20 = conv_bn(3, 16, 3) + 64 * 10 + 10;
  for (std::int64_t s = 0; s < 3; ++s) {
    const std::int64_t w = 16 << s;
    for (int b = 0; b < 3; ++b) resnet20 += conv_bn(b == 0 && s > 0 ? w / 2 : w, w, 3) + conv_bn(w, w, 3);
  }
  EXPECT_EQ(resnet20, 269722);  // the figure usually quoted for ResNet-20 (option A)
  // Option B adds a 1x1 conv + BN projection at the two stage changes.
  EXPECT_EQ(build({{"model", "resnet20"}})->num_parameters(), resnet20 + conv_bn(16, 32, 1) + conv_bn(32, 64, 1));
  // torchvision: resnet18 11,689,512; resnet50 25,557,032; mobilenet_v2 3,504,872 (1000 classes, 224x224).
  EXPECT_EQ(build({{"model", "resnet18"}, {"classes", 1000}})->num_parameters(), 11689512);
  EXPECT_EQ(build({{"model", "resnet50"}, {"classes", 1000}})->num_parameters(), 25557032);
  EXPECT_EQ(build({{"model", "mobilenetv2"}, {"classes", 1000}})->num_parameters(), 3504872);
}

TEST(ModelsCnn, FlopCountsMatchHandCounts) {
  // LeNet-5 per 28x28 sample: conv1 28*28*6*25 MACs + bias, conv2 10*10*16*150 + bias, FCs.
  const std::int64_t lenet = 2 * (28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10) +
                             28 * 28 * 6 + 10 * 10 * 16 + 120 + 84 + 10;
  EXPECT_EQ(flops_per_sample(*build({{"model", "lenet5"}}), {1, 28, 28}), lenet);
  // ResNet-20 (option A) is quoted at 40.55M multiply-adds on 32x32 inputs; option B adds
  // the projections: 16 * 32 * 16 * 16 + 32 * 64 * 8 * 8 MACs.
  const std::int64_t resnet20_macs = 16 * 3 * 9 * 1024 + 6 * 16 * 16 * 9 * 1024 + (32 * 16 * 9 * 256 + 5 * 32 * 32 * 9 * 256) +
                                     (64 * 32 * 9 * 64 + 5 * 64 * 64 * 9 * 64) + 64 * 10;
  EXPECT_NEAR(static_cast<double>(resnet20_macs), 40.55e6, 0.01e6);
  EXPECT_EQ(flops_per_sample(*build({{"model", "resnet20"}}), {3, 32, 32}),
            2 * (resnet20_macs + 16 * 32 * 256 + 32 * 64 * 64) + 10);
}

TEST(ModelsCnn, SaveLoadForwardGivesTheSameNumbers) {
  const nlohmann::json spec = {{"model", "resnet20"}, {"input_size", 16}};
  auto model = build(spec, 5);
  model->eval();
  Generator gen(9);
  const Tensor x = Tensor::randn({2, 3, 16, 16}, gen);
  const Tensor before = (*model)(x);
  const std::string path = ::testing::TempDir() + "resnet20.safetensors";
  save_checkpoint(path, *model);
  Generator other(77);
  auto loaded = load_checkpoint(path, other).model;
  loaded->eval();
  EXPECT_EQ((*loaded)(x).to_vector<float>(), before.to_vector<float>());
}

// Residual blocks compute relu(y + shortcut) as one add_relu where nothing hooks their ReLU;
// a hook on it brings back the add and the module call. Both give the same bits, forward and
// backward, in training and in eval mode.
TEST(ModelsCnn, FusedResidualAddAndReluGiveTheSameBitsAsTheTwoOps) {
  const std::vector<nlohmann::json> specs = {{{"model", "resnet20"}, {"input_size", 16}},
                                             {{"model", "resnet50"}, {"small_input", true}, {"input_size", 16}}};
  for (const auto& spec : specs)
    for (const bool training : {true, false}) {
      SCOPED_TRACE(spec.dump() + (training ? " training" : " eval"));
      auto run = [&](bool hooked) {
        auto model = build(spec, 5);
        model->train(training);
        std::vector<HookHandle> handles;
        std::int64_t hooked_calls = 0;
        if (hooked) {
          for (auto& [path, module] : model->named_modules())
            if (path.size() > 5 && path.substr(path.size() - 5) == ".relu")
              handles.push_back(module->register_forward_hook([&](Module&, const Tensor&, Tensor&) { ++hooked_calls; }));
        }
        Generator gen(9);
        const Tensor x = Tensor::randn({2, 3, 16, 16}, gen);
        const Tensor out = (*model)(x);
        std::vector<std::vector<float>> values = {out.to_vector<float>()};
        if (training) {  // the fused op runs exactly where nothing hooks the ReLU
          const std::int64_t fused = graph_ops(out, "add_relu");
          EXPECT_TRUE(hooked ? fused == 0 : fused > 0) << fused << " add_relu nodes";
          sum(mul(out, out)).backward();
          for (const Tensor& p : model->parameters()) values.push_back(p.grad().to_vector<float>());
        }
        if (hooked) {
          EXPECT_GT(hooked_calls, 0);
        }
        return values;
      };
      EXPECT_EQ(run(false), run(true));
    }
}

// An inference copy (BatchNorms folded into Identities) runs conv, Identity, ReLU/ReLU6 and the
// residual add as one kernel pass (nn/conv_fusion.h): the same bits as calling every module,
// which is what happens once each leaf is hooked; and the fusion does apply to the unhooked copy.
TEST(ModelsCnn, FoldedInferenceFusesConvEpiloguesWithTheSameBits) {
  const std::vector<nlohmann::json> specs = {
      {{"model", "resnet20"}, {"input_size", 16}},
      {{"model", "resnet50"}, {"small_input", true}, {"input_size", 16}},
      {{"model", "mobilenetv2"}, {"cifar_stride", true}, {"width", 0.5}},
      {{"model", "lenet5"}},
  };
  for (const auto& spec : specs) {
    SCOPED_TRACE(spec.dump());
    auto model = build(spec, 5);
    model->eval();
    std::shared_ptr<Module> folded = folded_inference_copy(*model);
    if (!folded) folded = model;  // nothing to fold (LeNet-5): its conv, ReLU runs fuse as they are
    std::int64_t fusable = 0;  // conv runs fused_conv would take, over every container
    for (auto& [path, module] : folded->named_modules())
      for (std::size_t i = 0; i < module->named_children().size(); ++i)
        if (auto run = conv_run(module->named_children(), i); run && run->length > 1) ++fusable;
    EXPECT_GT(fusable, 0);
    Shape batch = input_shape(spec);
    batch.insert(batch.begin(), 3);
    Generator gen(9);
    const Tensor x = Tensor::randn(batch, gen) * 3.0;  // past ReLU6's 6 too
    auto run = [&](bool hooked) {
      std::vector<HookHandle> handles;
      if (hooked)
        for (auto& [path, module] : folded->named_modules())
          if (module->named_children().empty())
            handles.push_back(module->register_forward_hook([](Module&, const Tensor&, Tensor&) {}));
      NoGradGuard no_grad;
      return (*folded)(x).to_vector<float>();
    };
    EXPECT_EQ(run(false), run(true));
    // The residual blocks' own forwards fuse too (not only Sequential runs).
    for (auto& [path, module] : folded->named_modules())
      if (module->type_name() == "BasicBlock" || module->type_name() == "Bottleneck") {
        EXPECT_TRUE(conv_fuses(*module->child("conv1"), module->child("bn1").get(), module->child("relu").get()))
            << path;
      }
  }
}

TEST(ModelsCnn, BadSpecsAreRefusedByName) {
  Generator gen(1);
  EXPECT_THROW(build_from_spec({{"model", "resnet20"}, {"input_size", 0}}, gen), Error);
  EXPECT_THROW(build_from_spec({{"model", "lenet5"}, {"in_channels", -1}}, gen), Error);
  EXPECT_THROW(build_from_spec({{"model", "mobilenetv2"}, {"width", 100}}, gen), Error);
  EXPECT_THROW(build_from_spec({{"model", "resnet18"}, {"small_input", 1}}, gen), Error);
  EXPECT_THROW(build_from_spec({{"model", "resnet20"}, {"depth", 3}}, gen), Error);
}
