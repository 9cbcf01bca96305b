// Chains of convolution blocks for inference (core/ops.h conv2d_residual_chain,
// inverted_residual_chain): one kernel call for a run of blocks where no gradient flows, the
// blocks' conv2d_then calls otherwise.
#include <vector>

#include "core/flop_counter.h"
#include "core/ops/common.h"

namespace shrink {

using namespace ops_detail;

namespace {

Shape output_shape(const kernels::Conv2dShape& s) { return {s.n, s.c_out, s.out_h(), s.out_w()}; }

const void* data_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

}  // namespace

Tensor conv2d_residual_chain(const Tensor& x, const std::vector<ResidualBlockWeights>& blocks) {
  const char* op = "conv2d_residual_chain";
  std::vector<kernels::Conv2dShape> s1, s2;
  std::vector<Tensor> inputs{x};
  bool empty_intermediate = false;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const ResidualBlockWeights& k = blocks[b];
    s1.push_back(conv2d_shape(op, x, x.shape(), k.w1, k.b1, k.o1));
    s2.push_back(conv2d_shape(op, x, output_shape(s1[b]), k.w2, k.b2, k.o2));
    const Shape out = output_shape(s2[b]);
    SHRINK_CHECK(out == x.shape(), op, ": block ", b, ": the second convolution's output ", shape_str(out),
                 " does not match the input ", shape_str(x.shape()), " it is added to (weights ",
                 shape_str(k.w1.shape()), " and ", shape_str(k.w2.shape()), ")");
    empty_intermediate = empty_intermediate || s1[b].c_out == 0;
    inputs.insert(inputs.end(), {k.w1, k.b1, k.w2, k.b2});
  }
  // The ops themselves where gradients flow, off the CPU, and around an empty intermediate.
  if (needs_grad(inputs) || !x.device().is_cpu() || empty_intermediate || blocks.empty()) {
    Tensor y = x;
    for (const ResidualBlockWeights& k : blocks)
      y = conv2d_then(conv2d_then(y, k.w1, k.b1, k.o1, Tensor(), ConvActivation::Relu), k.w2, k.b2, k.o2, y,
                      ConvActivation::Relu);
    return y;
  }
  Tensor y = empty_like(x);
  std::vector<const void*> w1, b1, w2, b2;
  for (const ResidualBlockWeights& k : blocks) {
    w1.push_back(k.w1.raw_data());
    b1.push_back(data_or_null(k.b1));
    w2.push_back(k.w2.raw_data());
    b2.push_back(data_or_null(k.b2));
  }
  if (y.numel() > 0)
    backend_of(x).conv2d_residual_chain(x.dtype(), static_cast<std::int64_t>(blocks.size()), s1.data(), s2.data(),
                                        x.raw_data(), w1.data(), b1.data(), w2.data(), b2.data(), y.raw_data());
  for (std::size_t b = 0; b < blocks.size(); ++b)
    count_flops(conv2d_flops(s1[b], blocks[b].b1.defined()) + conv2d_flops(s2[b], blocks[b].b2.defined()));
  return y;
}

Tensor inverted_residual_chain(const Tensor& x, const std::vector<InvertedResidualWeights>& blocks) {
  const char* op = "inverted_residual_chain";
  std::vector<kernels::InvertedResidualBlock> k(blocks.size());
  std::vector<Tensor> inputs{x};
  Shape in = x.shape();
  bool empty_intermediate = false;
  std::int64_t flops = 0;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    const InvertedResidualWeights& w = blocks[b];
    kernels::InvertedResidualBlock& kb = k[b];
    kb.has_expand = w.expand_weight.defined();
    Shape expanded = in;
    if (kb.has_expand) {
      kb.expand = conv2d_shape(op, x, in, w.expand_weight, w.expand_bias, w.expand_options);
      expanded = output_shape(kb.expand);
      empty_intermediate = empty_intermediate || kb.expand.c_out == 0;
      flops += conv2d_flops(kb.expand, w.expand_bias.defined());
    }
    kb.depthwise = conv2d_shape(op, x, expanded, w.depthwise_weight, w.depthwise_bias, w.depthwise_options);
    kb.project = conv2d_shape(op, x, output_shape(kb.depthwise), w.project_weight, w.project_bias, w.project_options);
    empty_intermediate = empty_intermediate || kb.depthwise.c_out == 0;
    flops += conv2d_flops(kb.depthwise, w.depthwise_bias.defined()) + conv2d_flops(kb.project, w.project_bias.defined());
    const Shape out = output_shape(kb.project);
    kb.residual = w.residual;
    SHRINK_CHECK(!w.residual || out == in, op, ": block ", b, ": the project convolution's output ", shape_str(out),
                 " does not match the block's input ", shape_str(in), " it is added to (project weight ",
                 shape_str(w.project_weight.shape()), ")");
    kb.expand_weight = data_or_null(w.expand_weight);
    kb.expand_bias = data_or_null(w.expand_bias);
    kb.depthwise_weight = w.depthwise_weight.raw_data();
    kb.depthwise_bias = data_or_null(w.depthwise_bias);
    kb.project_weight = w.project_weight.raw_data();
    kb.project_bias = data_or_null(w.project_bias);
    inputs.insert(inputs.end(), {w.expand_weight, w.expand_bias, w.depthwise_weight, w.depthwise_bias,
                                 w.project_weight, w.project_bias});
    in = out;
  }
  // The ops themselves where gradients flow, off the CPU, and around an empty intermediate.
  if (needs_grad(inputs) || !x.device().is_cpu() || empty_intermediate || blocks.empty()) {
    Tensor y = x;
    for (const InvertedResidualWeights& w : blocks) {
      Tensor t = y;
      if (w.expand_weight.defined())
        t = conv2d_then(t, w.expand_weight, w.expand_bias, w.expand_options, Tensor(), ConvActivation::Relu6);
      t = conv2d_then(t, w.depthwise_weight, w.depthwise_bias, w.depthwise_options, Tensor(), ConvActivation::Relu6);
      y = conv2d_then(t, w.project_weight, w.project_bias, w.project_options, w.residual ? y : Tensor(),
                      ConvActivation::None);
    }
    return y;
  }
  Tensor y = empty_like(x, in);
  if (y.numel() > 0)
    backend_of(x).inverted_residual_chain(x.dtype(), static_cast<std::int64_t>(k.size()), k.data(), x.raw_data(),
                                          y.raw_data());
  count_flops(flops);
  return y;
}

}  // namespace shrink
