// The inverted_residual_chain kernel (kernels/kernel_list.h): runs of blocks that
// inverted_residual_fuses go through the channels-last kernel one image at a time
// (kernels/cpu/inverted_residual_channels_last.h); any other block is its two or three conv2d
// calls through scratch maps.
#include <algorithm>

#include "kernels/cpu/chain_scratch.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/inverted_residual_channels_last.h"

namespace shrink::kernels::cpu {
void CpuBackend::inverted_residual_chain(DType t, std::int64_t blocks, const InvertedResidualBlock* b,
                                         const void* x, void* y) {
  // Slots 0 and 1 hold the maps between segments (in turn), 2 and 3 a block run apart's
  // expanded and depthwise maps.
  ChainScratch scratch(*this);
  std::size_t stream_bytes = 0, expanded_bytes = 0, depthwise_bytes = 0;
  for (std::int64_t i = 0; i < blocks; ++i) {
    stream_bytes = std::max(stream_bytes, output_map_bytes(b[i].project, t));
    if (b[i].has_expand) expanded_bytes = std::max(expanded_bytes, output_map_bytes(b[i].expand, t));
    depthwise_bytes = std::max(depthwise_bytes, output_map_bytes(b[i].depthwise, t));
  }
  const auto fuses = [&](std::int64_t i) { return t == DType::Float32 && inverted_residual_fuses(b[i]); };
  ConvEpilogue relu6;
  relu6.activate = true;
  relu6.activation = UnaryOp::Relu6;
  const void* in = x;
  for (std::int64_t i = 0; i < blocks;) {
    std::int64_t end = i;  // [i, end): the blocks the channels-last kernel runs at once
    while (end < blocks && fuses(end)) ++end;
    const std::int64_t last = std::max(end, i + 1);  // this segment's end (one block apart)
    void* out = last < blocks ? scratch.other_than(in, stream_bytes) : y;
    if (end > i) {
      inverted_residual_chain_channels_last(end - i, b + i, static_cast<const float*>(in), static_cast<float*>(out));
    } else {
      const InvertedResidualBlock& k = b[i];
      const void* expanded = in;
      if (k.has_expand) {
        void* e = scratch.get(2, expanded_bytes);
        conv2d(t, k.expand, in, k.expand_weight, k.expand_bias, relu6, e);
        expanded = e;
      }
      void* d = scratch.get(3, depthwise_bytes);
      conv2d(t, k.depthwise, expanded, k.depthwise_weight, k.depthwise_bias, relu6, d);
      ConvEpilogue add;
      add.residual = k.residual ? in : nullptr;
      conv2d(t, k.project, d, k.project_weight, k.project_bias, add, out);
    }
    in = out;
    i = last;
  }
}

}  // namespace shrink::kernels::cpu
