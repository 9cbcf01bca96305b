#include "kernels/cpu/conv_algorithm.h"

#include "kernels/cpu/conv_depthwise_3x3.h"
#include "kernels/cpu/conv_depthwise_blocked.h"
#include "kernels/cpu/conv_direct.h"
#include "kernels/cpu/conv_weight_pixels.h"
#include "kernels/cpu/conv_winograd.h"
#include "kernels/cpu/conv_winograd_channels_last.h"

namespace shrink::kernels::cpu {

bool is_depthwise(const Conv2dShape& s) { return s.groups == s.c_in && s.groups == s.c_out; }

ConvAlgorithm forward_algorithm(const Conv2dShape& s) {
  if (is_depthwise(s)) {
    if (depthwise_blocked_preferred(s)) return ConvAlgorithm::DepthwiseBlocked;
    return depthwise_3x3_rows_applies(s) ? ConvAlgorithm::Depthwise3x3 : ConvAlgorithm::Depthwise;
  }
  if (winograd_channels_last_preferred(s)) return ConvAlgorithm::WinogradChannelsLast;
  if (winograd_preferred(s)) return ConvAlgorithm::Winograd;
  return ConvAlgorithm::Direct;
}

ConvAlgorithm backward_input_algorithm(const Conv2dShape& s) {
  if (!backward_input_is_forward(s))
    return is_depthwise(s) ? ConvAlgorithm::DepthwiseBlocked : ConvAlgorithm::Im2colGemm;
  return forward_algorithm(backward_input_forward_shape(s));
}

ConvAlgorithm backward_weight_algorithm(const Conv2dShape& s) {
  if (is_depthwise(s)) return ConvAlgorithm::DepthwiseBlocked;
  if (winograd_weight_grad_preferred(s)) return ConvAlgorithm::Winograd;
  return weight_grad_pixel_lanes_preferred(s) ? ConvAlgorithm::DirectPixelLanes : ConvAlgorithm::Direct;
}

const char* algorithm_name(ConvAlgorithm a) {
  switch (a) {
    case ConvAlgorithm::Depthwise: return "depthwise";
    case ConvAlgorithm::Depthwise3x3: return "depthwise_3x3";
    case ConvAlgorithm::DepthwiseBlocked: return "depthwise_blocked";
    case ConvAlgorithm::WinogradChannelsLast: return "winograd_channels_last";
    case ConvAlgorithm::Winograd: return "winograd";
    case ConvAlgorithm::Direct: return "direct";
    case ConvAlgorithm::DirectPixelLanes: return "direct_pixel_lanes";
    case ConvAlgorithm::Im2colGemm: return "im2col";
  }
  return "?";
}

}  // namespace shrink::kernels::cpu
