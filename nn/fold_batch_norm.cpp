#include "nn/fold_batch_norm.h"

#include <string>
#include <tuple>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "nn/batch_norm.h"
#include "nn/conv.h"
#include "nn/identity.h"
#include "nn/models.h"

namespace shrink::nn {

namespace {

// The conv that computes bn(conv(x)) in one pass (the header's formulas).
std::shared_ptr<Conv2d> folded_conv(const Conv2d& conv, const BatchNorm2d& bn, const std::string& where) {
  const std::int64_t c = conv.out_channels();
  SHRINK_CHECK(bn.num_features() == c, "fold_batch_norms: ", where, " has ", bn.num_features(),
               " channels but the conv before it makes ", c);
  const Tensor scale = bn.parameter("weight").detach() / sqrt(bn.buffer("running_var") + bn.eps());
  const Tensor weight = conv.weight().detach() * reshape(scale, {c, 1, 1, 1});
  Tensor shift = bn.parameter("bias").detach() - bn.buffer("running_mean") * scale;
  if (conv.bias().defined()) shift = shift + conv.bias().detach() * scale;
  return std::make_shared<Conv2d>(weight, shift, conv.geometry());
}

}  // namespace

std::int64_t fold_batch_norms(Module& model) {
  NoGradGuard no_grad;
  // Collected first: replacing a child frees the old one, which the module list still names.
  std::vector<std::tuple<std::string, Module*, std::string, std::string>> pairs;
  for (auto& [path, m] : model.named_modules())
    for (auto& [a, b] : m->sole_reader_pairs()) pairs.emplace_back(path, m, a, b);
  std::int64_t folded = 0;
  for (auto& [path, parent, a, b] : pairs) {
    const auto conv = std::dynamic_pointer_cast<Conv2d>(parent->child(a));
    const auto bn = std::dynamic_pointer_cast<BatchNorm2d>(parent->child(b));
    if (!conv || !bn) continue;
    const std::string where = (path.empty() ? "" : path + ".") + b;
    SHRINK_CHECK(!bn->is_training(), "fold_batch_norms: ", where,
                 " is in training mode (batch statistics); call eval() first");
    parent->set_child(a, folded_conv(*conv, *bn, where));
    parent->set_child(b, std::make_shared<Identity>());
    ++folded;
  }
  return folded;
}

namespace {

// An eval-mode copy rebuilt from the builder spec, tensors copied, on the model's device.
std::shared_ptr<Module> eval_copy(const Module& model) {
  Generator gen(0);  // every tensor is overwritten by the copy below
  std::shared_ptr<Module> copy = build_from_spec(model_spec(model), gen);
  copy->load_state_dict(model.state_dict(), /*strict=*/true, Module::ShapeMismatch::Adopt);
  const std::vector<Tensor> params = model.parameters();
  if (!params.empty()) copy->to(params.front().device());
  copy->eval();
  return copy;
}

}  // namespace

std::shared_ptr<Module> folded_inference_copy(const Module& model) {
  if (model.builder_spec().empty()) return nullptr;
  std::shared_ptr<Module> copy = eval_copy(model);
  return fold_batch_norms(*copy) > 0 ? copy : nullptr;
}

std::shared_ptr<Module> inference_copy(const Module& model) {
  if (model.builder_spec().empty()) return nullptr;
  std::shared_ptr<Module> copy = eval_copy(model);
  fold_batch_norms(*copy);
  return copy;
}

}  // namespace shrink::nn
