// The convolutional model families (registered in nn/models.cpp beside the mlp family).
// Every builder takes the input's "in_channels", "input_size" (square) and "classes", so a
// data set states its own shape; each family's module tree and parameter names follow the
// reference PyTorch code, so a state dict exported there maps by name:
//   lenet5            conv1 6@5x5 (pad 2) relu pool1 conv2 16@5x5 relu pool2 flatten
//                     fc1 120 relu fc2 84 relu fc3 (the PFP paper's LeNet-5)
//   resnet20/32/44/56/110  CIFAR ResNets (He et al. 2016, Sec. 4.2): conv1 3x3@16, bn1,
//                     relu, layer1..3 of n BasicBlocks at 16/32/64 channels (6n+2 layers),
//                     global average pooling, linear; projection shortcuts "shortcut" (option B)
//   resnet18/34/50    torchvision's ResNets: conv1 7x7/2, bn1, relu, maxpool 3x3/2, layer1..4
//                     (BasicBlock or Bottleneck, 64..512 channels), avgpool, fc; "small_input":
//                     a 3x3/1 stem without the max-pool, for 32x32 inputs
//   mobilenetv2       torchvision's MobileNetV2: features (stem conv_bn 32, 17 inverted
//                     residuals, 1x1 conv_bn 1280), avgpool, classifier (dropout 0.2, Linear);
//                     "width" multiplier (channels rounded to multiples of 8), "cifar_stride":
//                     stride 1 in the stem and the second stage, for 32x32 inputs
#pragma once
#include <vector>

#include "nn/models.h"

namespace shrink::nn {

std::vector<ModelBuilder> cnn_builders();

}  // namespace shrink::nn
