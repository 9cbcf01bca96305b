#include "nn/flops.h"

#include <vector>

#include "core/autograd.h"
#include "core/flop_counter.h"
#include "core/shape_only.h"

namespace shrink::nn {

namespace {

Shape per_sample(const Shape& batched) { return Shape(batched.begin() + 1, batched.end()); }

// Runs `model` once on a batch of one zero sample in eval mode without gradients. A
// forward in eval mode changes no state (dropout is the identity, no statistics move)
// and the flag is restored, so the model is logically const: hence the const_cast.
std::int64_t counted_forward(const Module& model, const Shape& sample_shape) {
  Module& m = const_cast<Module&>(model);
  Shape batch_shape{1};
  batch_shape.insert(batch_shape.end(), sample_shape.begin(), sample_shape.end());
  const auto params = model.parameters();
  const DType dtype = model.takes_token_ids() ? DType::Int64 : params.empty() ? DType::Float32 : params[0].dtype();
  const Tensor x = Tensor::zeros(batch_shape, dtype, params.empty() ? Device::cpu() : params[0].device());
  struct RestoreTraining {
    Module& m;
    bool was;
    ~RestoreTraining() { m.train(was); }
  } restore{m, m.is_training()};
  m.eval();
  NoGradGuard no_grad;
  ShapeOnlyGuard shapes;  // FLOPs follow from shapes: no kernel needs to run
  FlopCounter counter;
  m(x);
  return counter.count();
}

}  // namespace

std::int64_t flops_per_sample(const Module& model, const Shape& sample_shape) {
  return counted_forward(model, sample_shape);
}

std::map<std::string, ModuleTrace> trace_forward(const Module& model, const Shape& sample_shape) {
  std::map<std::string, ModuleTrace> traces;
  FlopCounter total;  // sees every op of the forward below
  // Each call's FLOPs = the total after it minus the total before it; calls nest (a
  // container's children run inside it), so the starts form a stack.
  std::vector<std::int64_t> starts;
  std::vector<HookHandle> handles;
  for (auto& [path, module] : const_cast<Module&>(model).named_modules()) {
    handles.push_back(module->register_forward_pre_hook(
        [&starts, &total](Module&, const Tensor&) { starts.push_back(total.count()); }));
    handles.push_back(module->register_forward_hook(
        [&traces, &starts, &total, path = path](Module&, const Tensor& input, Tensor& output) {
          ModuleTrace& t = traces[path];
          t.input_shape = per_sample(input.shape());
          t.output_shape = per_sample(output.shape());
          t.flops += total.count() - starts.back();
          starts.pop_back();
        }));
  }
  counted_forward(model, sample_shape);
  return traces;
}

}  // namespace shrink::nn
