#include "nn/models_cnn.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "nn/activation.h"
#include "nn/batch_norm.h"
#include "nn/conv.h"
#include "nn/dropout.h"
#include "nn/flatten.h"
#include "nn/input_channels.h"
#include "nn/linear.h"
#include "nn/model_arguments.h"
#include "nn/pool.h"
#include "nn/residual.h"

namespace shrink::nn {

namespace {

const std::vector<std::string> kImageKeys = with_image_keys({});

// Every CNN starts with an InputChannels child ("input"): where --prune-inputs installs the
// input-channel selection (nn/input_channels.h); a pass-through holding nothing until then.
std::shared_ptr<Sequential> with_input_channels() {
  auto m = std::make_shared<Sequential>();
  m->push_back("input", std::make_shared<InputChannels>());
  return m;
}

std::shared_ptr<Module> lenet5(const ImageArguments& a, Generator& gen) {
  // 5x5 convs, pad 2 on the first, 2x2 max-pools: side s -> s/2 -> (s/2 - 4)/2.
  const std::int64_t side = (a.size / 2 - 4) / 2;
  auto m = with_input_channels();
  m->push_back("conv1", std::make_shared<Conv2d>(a.channels, 6, Conv2dGeometry{5, 5, 1, 2, 1, 1}, true, gen));
  m->push_back("relu1", make_activation("relu"));
  m->push_back("pool1", std::make_shared<Pool2d>(Pool2d::Kind::Max, 2));
  m->push_back("conv2", std::make_shared<Conv2d>(6, 16, Conv2dGeometry{5, 5, 1, 0, 1, 1}, true, gen));
  m->push_back("relu2", make_activation("relu"));
  m->push_back("pool2", std::make_shared<Pool2d>(Pool2d::Kind::Max, 2));
  m->push_back("flatten", std::make_shared<Flatten>());
  m->push_back("fc1", std::make_shared<Linear>(16 * side * side, 120, gen));
  m->push_back("relu3", make_activation("relu"));
  m->push_back("fc2", std::make_shared<Linear>(120, 84, gen));
  m->push_back("relu4", make_activation("relu"));
  m->push_back("fc3", std::make_shared<Linear>(84, a.classes, gen));
  return m;
}

// layer1..: `blocks[i]` blocks at `widths[i]` channels, the first of each stage after the
// first with stride 2.
template <class Block>
void residual_stages(Sequential& m, std::int64_t in, const std::vector<std::int64_t>& widths,
                     const std::vector<std::int64_t>& blocks, const std::string& shortcut, Generator& gen) {
  for (std::size_t s = 0; s < widths.size(); ++s) {
    auto stage = std::make_shared<Sequential>();
    for (std::int64_t b = 0; b < blocks[s]; ++b) {
      const std::int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      stage->push_back(std::make_shared<Block>(in, widths[s], stride, shortcut, gen));
      in = widths[s] * Block::kExpansion;
    }
    m.push_back("layer" + std::to_string(s + 1), stage);
  }
}

std::shared_ptr<Module> cifar_resnet(std::int64_t depth, const ImageArguments& a, Generator& gen) {
  const std::int64_t n = (depth - 2) / 6;
  auto m = with_input_channels();
  m->push_back("conv1", std::make_shared<Conv2d>(a.channels, 16, Conv2dGeometry{3, 3, 1, 1, 1, 1}, false, gen));
  m->push_back("bn1", std::make_shared<BatchNorm2d>(16));
  m->push_back("relu", make_activation("relu"));
  residual_stages<BasicBlock>(*m, 16, {16, 32, 64}, {n, n, n}, "shortcut", gen);
  m->push_back("avgpool", std::make_shared<AdaptiveAvgPool2d>(1, 1));
  m->push_back("flatten", std::make_shared<Flatten>());
  m->push_back("linear", std::make_shared<Linear>(64, a.classes, gen));
  return m;
}

template <class Block>
std::shared_ptr<Module> imagenet_resnet(const std::vector<std::int64_t>& blocks, const ImageArguments& a,
                                        bool small_input, Generator& gen) {
  auto m = with_input_channels();
  const Conv2dGeometry stem = small_input ? Conv2dGeometry{3, 3, 1, 1, 1, 1} : Conv2dGeometry{7, 7, 2, 3, 1, 1};
  m->push_back("conv1", std::make_shared<Conv2d>(a.channels, 64, stem, false, gen));
  m->push_back("bn1", std::make_shared<BatchNorm2d>(64));
  m->push_back("relu", make_activation("relu"));
  if (!small_input) m->push_back("maxpool", std::make_shared<Pool2d>(Pool2d::Kind::Max, 3, 2, 1));
  residual_stages<Block>(*m, 64, {64, 128, 256, 512}, blocks, "downsample", gen);
  m->push_back("avgpool", std::make_shared<AdaptiveAvgPool2d>(1, 1));
  m->push_back("flatten", std::make_shared<Flatten>());
  m->push_back("fc", std::make_shared<Linear>(512 * Block::kExpansion, a.classes, gen));
  return m;
}

// torchvision's _make_divisible: round to the nearest multiple of 8, never below 90%.
std::int64_t make_divisible(double v) {
  std::int64_t r = std::max<std::int64_t>(8, static_cast<std::int64_t>(v + 4) / 8 * 8);
  if (static_cast<double>(r) < 0.9 * v) r += 8;
  return r;
}

std::shared_ptr<Module> mobilenetv2(const ImageArguments& a, double width, bool cifar_stride, Generator& gen) {
  // (expand ratio t, channels c, repeats n, first stride s): Sandler et al. 2018, Table 2.
  const std::int64_t settings[7][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                       {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};
  auto features = std::make_shared<Sequential>();
  std::int64_t in = make_divisible(32 * width);
  const std::int64_t last = make_divisible(1280 * std::max(1.0, width));
  features->push_back(conv_bn(a.channels, in, 3, cifar_stride ? 1 : 2, 1, "relu6", gen));
  for (int stage = 0; stage < 7; ++stage) {
    const auto [t, c, n, s] = settings[stage];
    const std::int64_t out = make_divisible(static_cast<double>(c) * width);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t stride = i > 0 ? 1 : (cifar_stride && stage == 1 ? 1 : s);
      features->push_back(std::make_shared<InvertedResidual>(in, out, stride, t, gen));
      in = out;
    }
  }
  features->push_back(conv_bn(in, last, 1, 1, 1, "relu6", gen));
  auto classifier = std::make_shared<Sequential>();
  classifier->push_back(std::make_shared<Dropout>(0.2, gen));
  classifier->push_back(std::make_shared<Linear>(last, a.classes, gen));
  auto m = with_input_channels();
  m->push_back("features", features);
  m->push_back("avgpool", std::make_shared<AdaptiveAvgPool2d>(1, 1));
  m->push_back("flatten", std::make_shared<Flatten>());
  m->push_back("classifier", classifier);
  return m;
}

ModelBuilder cifar_resnet_builder(std::int64_t depth) {
  const std::string name = "resnet" + std::to_string(depth);
  return {name, "CIFAR ResNet-" + std::to_string(depth) + ": 3 stages of " + std::to_string((depth - 2) / 6) +
                    " BasicBlocks at 16/32/64 channels, option-B shortcuts (He et al. 2016)",
          kImageKeys,
          [depth](const nlohmann::json& spec, Generator& gen) {
            return cifar_resnet(depth, image_arguments(spec, 32, 8), gen);
          },
          [](const nlohmann::json& spec) { return image_shape(image_arguments(spec, 32, 8)); }, {}, {}};
}

template <class Block>
ModelBuilder imagenet_resnet_builder(const std::string& name, std::vector<std::int64_t> blocks) {
  return {name, "torchvision " + name + " (\"small_input\": 3x3 stem, no max-pool, for 32x32 inputs)",
          with_image_keys({"small_input"}),
          [blocks](const nlohmann::json& spec, Generator& gen) {
            return imagenet_resnet<Block>(blocks, image_arguments(spec, 224, 8), flag_argument(spec, "small_input"), gen);
          },
          [](const nlohmann::json& spec) { return image_shape(image_arguments(spec, 224, 8)); }, {}, {}};
}

}  // namespace

std::vector<ModelBuilder> cnn_builders() {
  std::vector<ModelBuilder> b;
  b.push_back({"lenet5", "LeNet-5: conv 6/16 (5x5), max-pools, FC 120/84 (the PFP paper's LeNet-5)", kImageKeys,
               [](const nlohmann::json& spec, Generator& gen) { return lenet5(image_arguments(spec, 28, 12), gen); },
               [](const nlohmann::json& spec) { return image_shape(image_arguments(spec, 28, 12)); }, {}, {}});
  for (std::int64_t depth : {20, 32, 44, 56, 110}) b.push_back(cifar_resnet_builder(depth));
  b.push_back(imagenet_resnet_builder<BasicBlock>("resnet18", {2, 2, 2, 2}));
  b.push_back(imagenet_resnet_builder<BasicBlock>("resnet34", {3, 4, 6, 3}));
  b.push_back(imagenet_resnet_builder<Bottleneck>("resnet50", {3, 4, 6, 3}));
  b.push_back({"mobilenetv2",
               "MobileNetV2 (Sandler et al. 2018; \"width\" multiplier, \"cifar_stride\" for 32x32 inputs)",
               with_image_keys({"width", "cifar_stride"}),
               [](const nlohmann::json& spec, Generator& gen) {
                 const double width = number_argument(spec, "width", 1.0, 0.1, 4.0);
                 return mobilenetv2(image_arguments(spec, 32, 8), width, flag_argument(spec, "cifar_stride"), gen);
               },
               [](const nlohmann::json& spec) { return image_shape(image_arguments(spec, 32, 8)); }, {}, {}});
  return b;
}

}  // namespace shrink::nn
