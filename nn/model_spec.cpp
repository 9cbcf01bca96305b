// The spec of a live model, shape-only copies, and the widths reports print
// (declared in nn/models.h).
#include "core/random.h"
#include "core/strings.h"
#include "nn/input_selection.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/sparse_conv.h"
#include "nn/sparse_linear.h"

namespace shrink::nn {

nlohmann::json model_spec(const Module& model) {
  SHRINK_CHECK(!model.builder_spec().empty(), "model_spec: this ", model.type_name(),
               " was not built by a registered model builder (nn/models.h: ",
               join(model_names(), ", "),
               "), so no spec can rebuild it");
  nlohmann::json spec = nlohmann::json::parse(model.builder_spec());
  nlohmann::json sparse = nlohmann::json::object();
  for (const auto& [path, module] : model.named_modules())
    if (const auto* s = dynamic_cast<const SparseLinear*>(module))
      sparse[path] = {{"in_features", s->in_features()},
                      {"out_features", s->out_features()},
                      {"nnz", s->nnz()},
                      {"bias", s->has_bias()}};
    else if (const auto* c = dynamic_cast<const SparseConv2d*>(module)) {
      const Conv2dGeometry& g = c->geometry();
      sparse[path] = {{"in_channels", c->in_channels()}, {"out_channels", c->out_channels()},
                      {"kernel_h", g.kernel_h},          {"kernel_w", g.kernel_w},
                      {"stride", g.stride},              {"padding", g.padding},
                      {"dilation", g.dilation},          {"groups", g.groups},
                      {"nnz", c->nnz()},                 {"bias", c->has_bias()}};
    }
  if (!sparse.empty()) spec["sparse"] = sparse;
  nlohmann::json inputs = nlohmann::json::object();
  for (const auto& [path, module] : model.named_modules())
    if (const auto* s = dynamic_cast<const InputSelection*>(module); s && s->selects_inputs())
      inputs[path] = {{"features", s->selected_from()}};
  if (!inputs.empty()) spec["inputs"] = inputs;
  return spec;
}

std::shared_ptr<Module> shape_copy(const Module& model) {
  Generator gen(0);  // the rebuilt model's values are never read: no fills
  FillsOff no_fills(gen);
  std::shared_ptr<Module> copy = build_from_spec(model_spec(model), gen);
  for (const auto& [name, t] : model.state_dict()) {
    const bool parameter = copy->has_parameter(name);
    SHRINK_CHECK(parameter || copy->has_buffer(name), "shape_copy: the model's '", name,
                 "' has no slot in the model its spec builds");
    const Tensor& slot = parameter ? copy->parameter(name) : copy->buffer(name);
    if (slot.dtype() == DType::Int64) {  // index structure: a forward must be able to read it
      if (slot.shape() != t.shape()) copy->set_buffer(name, t.detach().to(Device::cpu()).clone());
      continue;
    }
    Tensor shaped = Tensor::empty(t.shape(), t.dtype());
    if (parameter) copy->set_parameter(name, shaped);
    else copy->set_buffer(name, shaped);
  }
  copy->train(model.is_training());
  return copy;
}

std::vector<std::int64_t> layer_widths(const Module& model) {
  std::vector<std::int64_t> widths;
  for (const auto& [path, module] : model.named_modules()) {
    std::int64_t in = 0, out = 0;
    if (const auto* l = dynamic_cast<const Linear*>(module)) in = l->in_features(), out = l->out_features();
    else if (const auto* s = dynamic_cast<const SparseLinear*>(module))
      in = s->in_features(), out = s->out_features();
    else continue;
    if (widths.empty()) widths.push_back(in);
    widths.push_back(out);
  }
  return widths;
}

}  // namespace shrink::nn
