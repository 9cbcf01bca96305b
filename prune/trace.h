// Channel tracing: which tensors of a model index the same channels, on any graph of
// declared modules (residual adds, depthwise convs, flatten), found by running it once.
//
// One forward pass in eval mode on a zero sample, with forward hooks on every leaf module
// (a module without children) and the model input marked requires_grad so that every op
// between modules records its autograd node. Each leaf call then says what it does to the
// channels of the value it reads (nn::Module::ChannelSpec); the ops between leaf calls
// (an add of two activations, a functional ReLU, a reshape) are read from their autograd
// nodes. Every value carries a channel space; a Transform (Linear, Conv2d) starts a new
// one, an elementwise add unites its inputs' spaces (union-find), a depthwise conv or a BN
// keeps it, a Flatten keeps it with each channel now a block of H*W features. What comes
// out is one record per connected space: its producers, consumers, members
// {tensor, axis, block} and how the consumers read it. prune/group.h turns these into groups.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/shape.h"
#include "nn/module.h"

namespace shrink::prune {

struct Member {
  std::string tensor;  // dotted parameter or buffer name, e.g. "1.weight"
  int axis;            // the axis indexed by the group's units
  // Consecutive indices per unit along `axis`: 1, or H*W for a Linear reading a flattened map.
  std::int64_t block = 1;
  bool operator==(const Member& o) const { return tensor == o.tensor && axis == o.axis && block == o.block; }
};

// How one consumer reads a space: the elementwise modules the channels passed through
// since their producer, in order (empty after an op between modules that is not one, e.g.
// an add: then `foldable` is false), and the module whose output it reads (before any
// flatten; the producer itself when nothing came between).
struct ConsumerRead {
  std::string consumer;
  std::string activation;
  std::vector<std::string> path;
  bool foldable = true;  // `path` is the whole story from one producer to this consumer
  std::int64_t block = 1;
  // The BatchNorm that is the only reader of the consumer's output, if there is one (where
  // the shift fold of prune/slice.h goes for a consumer without a bias).
  std::string norm_after;
};

struct ChannelSpace {
  std::int64_t size = 0;               // channels
  std::vector<std::string> producers;  // Transform modules writing the channels, in call order
  std::vector<Member> members;         // producers' output axes, then elementwise members, then consumers'
  std::vector<ConsumerRead> reads;     // one per consumer, in call order
  bool through_add = false;            // two activations meet in an elementwise op (a residual add)
  bool model_input = false;            // the model input's channels
  bool reaches_output = false;         // the model output's channels (the logits)
  std::string opaque;                  // "path (Type)" of an undeclared module touching it, if any
};

struct ChannelTrace {
  std::vector<ChannelSpace> spaces;  // connected spaces, in order of first producer (input first)
  // For each leaf module that produced a value: the modules and ops that read it directly
  // ("op:add" for an op). The consumer refit and the shift fold (prune/slice.h) ask whether
  // a conv's only reader is its BatchNorm.
  std::map<std::string, std::vector<std::string>> readers;
};

// Traces `model` on a zero batch of one sample of `sample_shape`. Restores the train/eval
// mode it found and removes its hooks. Throws shrink::Error naming the module and the op
// when the channels reaching a module cannot be traced (an op it does not know between
// modules, a module reading a value the pass never saw).
ChannelTrace trace_channels(nn::Module& model, const Shape& sample_shape);

}  // namespace shrink::prune
