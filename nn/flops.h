// The FLOP convention every report in shrink uses (core/flop_counter.h implements it in
// the ops, prune/ reports quote it):
//   - one multiply-add counts as 2 FLOPs, so a Linear costs 2*in*out per sample, plus
//     `out` for its bias add; a SparseLinear 2*nnz plus `out`; any matmul 2*m*n*k (and
//     a conv 2*k*k*(in/groups)*out per output position, plus `out` per position for a bias);
//   - activations, dropout, flatten and other elementwise work count 0 (memory-bound,
//     and negligible beside the products);
//   - counts are per sample: the batch axis is not part of `sample_shape`.
// So lenet-300-100 costs 2*(784*300 + 300*100 + 100*10) + (300 + 100 + 10) = 532,810.
//
// The ops count, not the modules: flops_per_sample runs one forward of a batch of one
// sample inside a FlopCounter scope, so no container restates its forward and a product
// computed outside any Linear is counted too.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "nn/module.h"

namespace shrink::nn {

// FLOPs of one forward pass of one sample of shape `sample_shape` (e.g. {1, 28, 28}).
// Runs the model on a zero batch (1, sample_shape...) on its parameters' device and dtype,
// in eval mode without gradients; the training flag is restored, so the model is left as
// it was. A sample that does not fit the model throws the op's shrink::Error.
std::int64_t flops_per_sample(const Module& model, const Shape& sample_shape);

// What one module did in that forward: per-sample (batch axis dropped) input and output
// shapes, and the FLOPs of its ops, children included. A module called twice sums.
struct ModuleTrace {
  Shape input_shape, output_shape;
  std::int64_t flops = 0;
};
// Every module that ran, by path ("" the root, "1", "layers.0"), from one forward as above,
// recorded with forward hooks.
std::map<std::string, ModuleTrace> trace_forward(const Module& model, const Shape& sample_shape);

}  // namespace shrink::nn
