// nn/models.h and nn/flops.h: the model builder registry, specs that rebuild pruned and
// sparsified models, shape-only copies, and FLOPs counted by the ops during a forward.
#include <gtest/gtest.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "core/shrink.h"
#include "nn/activation.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/sparse_linear.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::nn;

namespace {

using shrink::testing::error_of;

std::vector<std::string> names_of(const NamedTensors& named) {
  std::vector<std::string> out;
  for (auto& [name, t] : named) out.push_back(name);
  return out;
}

// Keeps units {0, 1, 3, 6} of hidden layer "1" (7 units): its rows and the next columns.
void prune_first_hidden(Module& model) {
  const Tensor kept = Tensor::from_vector<std::int64_t>({0, 1, 3, 6}, {4});
  model.set_parameter("1.weight", index_select(model.parameter("1.weight"), 0, kept));
  model.set_parameter("1.bias", index_select(model.parameter("1.bias"), 0, kept));
  model.set_parameter("3.weight", index_select(model.parameter("3.weight"), 1, kept));
}

}  // namespace

// ---- builders ----

TEST(Models, BuildersGiveExpectedShapes) {
  Generator gen(1);
  auto lenet = build_model("lenet-300-100", gen);
  EXPECT_EQ((*lenet)(Tensor::zeros({2, 1, 28, 28})).shape(), (Shape{2, 10}));
  EXPECT_EQ(lenet->parameter("1.weight").shape(), (Shape{300, 784}));
  EXPECT_EQ(lenet->parameter("5.weight").shape(), (Shape{10, 100}));
  EXPECT_EQ(lenet->num_parameters(), 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10);

  auto ffn = build_model("ffn-10000", gen);
  EXPECT_EQ(names_of(ffn->named_parameters()),
            (std::vector<std::string>{"1.weight", "1.bias", "3.weight", "3.bias"}));
  EXPECT_EQ(ffn->parameter("1.weight").shape(), (Shape{10000, 784}));
  EXPECT_EQ(ffn->parameter("3.weight").shape(), (Shape{10, 10000}));

  auto mlp = build_model("mlp:7-13-5:tanh", gen);
  EXPECT_EQ((*mlp)(Tensor::zeros({3, 7})).shape(), (Shape{3, 5}));
  EXPECT_EQ(mlp->child("2")->type_name(), "Tanh");
}

TEST(Models, UnknownOrMalformedSpecsListValidOnes) {
  Generator gen(1);
  for (const char* spec : {"resnet-1000", "mlp:", "mlp:784", "mlp:784-0-10", "mlp:784-x-10",
                           "mlp:784-10:swish", "mlp:784-10:relu:extra", "mlp"}) {
    const std::string msg = error_of([&] { build_model(spec, gen); });
    EXPECT_FALSE(msg.empty()) << spec;
    if (std::string(spec) == "resnet-1000") {
      EXPECT_NE(msg.find("lenet-300-100"), std::string::npos) << msg;
      EXPECT_NE(msg.find("ffn-10000"), std::string::npos) << msg;
    }
  }
  const std::string unknown = error_of([&] { build_from_spec({{"model", "vgg"}}, gen); });
  EXPECT_NE(unknown.find("registered: lenet-300-100, ffn-10000, mlp"), std::string::npos) << unknown;
  const std::string arg =
      error_of([&] { build_from_spec({{"model", "lenet-300-100"}, {"depth", 3}}, gen); });
  EXPECT_NE(arg.find("takes no argument 'depth' (it takes: bias, dropout)"), std::string::npos) << arg;
  EXPECT_THROW(build_from_spec({{"model", "mlp"}}, gen), Error);  // no "spec"
  EXPECT_THROW(build_from_spec({{"model", "mlp"}, {"spec", "4-2"}, {"bias", "yes"}}, gen), Error);
  EXPECT_THROW(build_from_spec({{"model", "mlp"}, {"spec", "4-2"}, {"dropout", 1.0}}, gen), Error);
  EXPECT_THROW(build_from_spec({{"family", "mlp"}}, gen), Error);
}

TEST(Models, TextFormsCarryBuilderArguments) {
  EXPECT_EQ(parse_model_text("resnet18:small_input=true,classes=100"),
            (nlohmann::json{{"model", "resnet18"}, {"small_input", true}, {"classes", 100}}));
  EXPECT_EQ(parse_model_text("mobilenetv2:width=0.5"), (nlohmann::json{{"model", "mobilenetv2"}, {"width", 0.5}}));
  EXPECT_EQ(parse_model_text(R"({"model": "resnet20", "input_size": 28})"),
            (nlohmann::json{{"model", "resnet20"}, {"input_size", 28}}));
  EXPECT_EQ(parse_model_text("lenet5"), (nlohmann::json{{"model", "lenet5"}}));
  // A wrong key names it and what the builder takes; a malformed item names the item.
  const std::string key = error_of([] { parse_model_text("resnet20:depth=3"); });
  EXPECT_NE(key.find("takes no argument 'depth'"), std::string::npos) << key;
  const std::string item = error_of([] { parse_model_text("resnet20:input_size"); });
  EXPECT_NE(item.find("'input_size' is not KEY=VALUE"), std::string::npos) << item;
  EXPECT_THROW(parse_model_text("resnet20:classes=3,classes=4"), Error);
  EXPECT_THROW(parse_model_text("{\"model\": "), Error);
  Generator gen(1);
  EXPECT_THROW(build_model("resnet20:classes=many", gen), Error);  // typed by the builder
}

TEST(Models, EveryRegisteredBuilderRemembersItsSpecAndTakesItsInputShape) {
  for (const ModelBuilder& b : model_builders()) {
    SCOPED_TRACE(b.name);
    Generator gen(3);
    nlohmann::json spec = {{"model", b.name}};
    if (b.name == "mlp") spec["spec"] = "6-5-4:gelu";
    auto model = build_from_spec(spec, gen);
    EXPECT_EQ(model_spec(*model), spec);
    EXPECT_FALSE(b.description.empty());
    Shape batch{2};
    for (auto d : input_shape(spec)) batch.push_back(d);
    EXPECT_EQ((*model)(Tensor::zeros(batch, model->takes_token_ids() ? DType::Int64 : DType::Float32)).dim(), 2);
  }
  EXPECT_EQ(model_names(), (std::vector<std::string>{"lenet-300-100", "ffn-10000", "mlp", "lenet5", "resnet20",
                                                     "resnet32", "resnet44", "resnet56", "resnet110", "resnet18",
                                                     "resnet34", "resnet50", "mobilenetv2", "vit-tiny", "bert-tiny"}));
}

TEST(Models, DropoutArgumentFollowsEveryHiddenActivation) {
  Generator gen(1);
  const nlohmann::json spec = {{"model", "mlp"}, {"spec", "6-5-4-3:gelu"}, {"dropout", 0.25}};
  auto model = build_from_spec(spec, gen);
  std::vector<std::string> types;
  for (const auto& [name, child] : model->named_children()) types.push_back(child->type_name());
  EXPECT_EQ(types, (std::vector<std::string>{"Flatten", "Linear", "GELU", "Dropout", "Linear",
                                             "GELU", "Dropout", "Linear"}));
  EXPECT_DOUBLE_EQ(dynamic_cast<const Dropout&>(*model->child("3")).p(), 0.25);
  EXPECT_EQ(model_spec(*model), spec);
  // build_mlp remembers an equivalent spec.
  auto direct = build_mlp({6, 5, 4, 3}, "gelu", false, gen, 0.25);
  EXPECT_EQ(model_spec(*direct),
            (nlohmann::json{{"model", "mlp"}, {"spec", "6-5-4-3:gelu"}, {"bias", false}, {"dropout", 0.25}}));
}

// ---- specs rebuild pruned models ----

TEST(Models, SpecRebuildsAPrunedModelByAdoptingShapes) {
  Generator gen(1);
  auto model = build_model("mlp:9-7-5-3", gen);
  prune_first_hidden(*model);
  const nlohmann::json spec = model_spec(*model);
  EXPECT_EQ(spec, (nlohmann::json{{"model", "mlp"}, {"spec", "9-7-5-3"}}));  // widths come from tensors
  EXPECT_EQ(layer_widths(*model), (std::vector<std::int64_t>{9, 4, 5, 3}));
  auto rebuilt = build_from_spec(spec, gen);
  EXPECT_THROW(rebuilt->load_state_dict(model->state_dict()), Error);  // default: shapes must match
  rebuilt->load_state_dict(model->state_dict(), true, Module::ShapeMismatch::Adopt);
  EXPECT_EQ(layer_widths(*rebuilt), (std::vector<std::int64_t>{9, 4, 5, 3}));
  const Tensor x = Tensor::randn({2, 9}, gen);
  EXPECT_EQ((*rebuilt)(x).to_vector<float>(), (*model)(x).to_vector<float>());
  EXPECT_EQ(input_shape(spec), (Shape{9}));
}

TEST(Models, SpecRecordsSparseLayersByPath) {
  Generator gen(1);
  auto model = build_model("mlp:6-5-3", gen);
  model->set_child("1", SparseLinear::from_dense(dynamic_cast<const Linear&>(*model->child("1")),
                                                 [](std::int64_t r, std::int64_t c, double) { return (r + c) % 2 == 0; }));
  const nlohmann::json spec = model_spec(*model);
  EXPECT_EQ(spec["sparse"], (nlohmann::json{{"1", {{"in_features", 6}, {"out_features", 5},
                                                    {"nnz", 15}, {"bias", true}}}}));
  auto rebuilt = build_from_spec(spec, gen);
  EXPECT_EQ(rebuilt->child("1")->type_name(), "SparseLinear");
  rebuilt->load_state_dict(model->state_dict(), true, Module::ShapeMismatch::Adopt);
  const Tensor x = Tensor::randn({3, 6}, gen);
  EXPECT_EQ((*rebuilt)(x).to_vector<float>(), (*model)(x).to_vector<float>());
  EXPECT_EQ(model_spec(*rebuilt), spec);
  EXPECT_THROW(build_from_spec({{"model", "mlp"}, {"spec", "6-5-3"}, {"sparse", {{"1", {{"nnz", 3}}}}}}, gen),
               Error);
}

TEST(Models, HandAssembledModelsHaveNoSpec) {
  Generator gen(1);
  Sequential model;
  model.push_back(std::make_shared<Linear>(3, 2, gen));
  const std::string msg = error_of([&] { model_spec(model); });
  EXPECT_NE(msg.find("not built by a registered model builder"), std::string::npos) << msg;
}

TEST(Models, ShapeCopyHasTheLiveShapesAndSharesNothing) {
  Generator gen(1);
  auto model = build_model("mlp:9-7-5-3", gen);
  prune_first_hidden(*model);
  model->set_child("5", SparseLinear::from_dense(dynamic_cast<const Linear&>(*model->child("5")), 0.2));
  model->eval();
  auto copy = shape_copy(*model);
  EXPECT_FALSE(copy->is_training());
  const StateDict a = model->state_dict(), b = copy->state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    EXPECT_EQ(b.at(name).shape(), t.shape()) << name;
    EXPECT_EQ(b.at(name).dtype(), t.dtype()) << name;
    EXPECT_NE(b.at(name).raw_data(), t.raw_data()) << name;
  }
  EXPECT_EQ(copy->num_parameters(), model->num_parameters());
  EXPECT_EQ(flops_per_sample(*copy, {9}), flops_per_sample(*model, {9}));
}

// ---- FLOPs: counted by the ops ----

TEST(Flops, ClosedFormForMlps) {
  Generator gen(1);
  auto lenet = build_model("lenet-300-100", gen);
  const std::int64_t lenet_flops = 2 * (784 * 300 + 300 * 100 + 100 * 10) + (300 + 100 + 10);
  EXPECT_EQ(lenet_flops, 532810);
  EXPECT_EQ(flops_per_sample(*lenet, {1, 28, 28}), lenet_flops);
  EXPECT_EQ(flops_per_sample(*lenet, {784}), lenet_flops);
  auto ffn = build_model("ffn-10000", gen);
  EXPECT_EQ(flops_per_sample(*ffn, {784}), 2 * (784 * 10000 + 10000 * 10) + 10010);
  Linear no_bias(Tensor::zeros({6, 5}));
  EXPECT_EQ(flops_per_sample(no_bias, {5}), 2 * 5 * 6);
  EXPECT_EQ(flops_per_sample(no_bias, {3, 5}), 3 * 2 * 5 * 6);  // a sequence of 3 rows
  EXPECT_THROW(flops_per_sample(*lenet, {100}), Error);
  // Dropout costs nothing and the count leaves the training flag as it was.
  auto dropped = build_from_spec({{"model", "lenet-300-100"}, {"dropout", 0.5}}, gen);
  EXPECT_TRUE(dropped->is_training());
  EXPECT_EQ(flops_per_sample(*dropped, {784}), lenet_flops);
  EXPECT_TRUE(dropped->is_training());
}

// A product outside any Linear (as attention computes q k^T) is still counted.
class Bilinear : public Module {
 public:
  std::string type_name() const override { return "Bilinear"; }

 protected:
  Tensor forward(const Tensor& x) override { return matmul(x, transpose(x, -2, -1)); }  // (n, n)
};

TEST(Flops, OpsCountProductsOutsideLinearsAndOnlyInTheirScope) {
  Bilinear b;
  EXPECT_EQ(flops_per_sample(b, {4, 3}), 2 * 4 * 4 * 3);  // (4, 3) @ (3, 4)
  {
    FlopCounter outer;
    matmul(Tensor::ones({2, 3, 5}), Tensor::ones({2, 5, 7}));  // batched: 2 * (2*3*5*7)
    {
      FlopCounter inner;
      linear(Tensor::ones({4, 5}), Tensor::ones({6, 5}), Tensor::ones({6}));  // 4*(2*5*6 + 6)
      EXPECT_EQ(inner.count(), 4 * (2 * 5 * 6 + 6));
    }
    EXPECT_EQ(outer.count(), 2 * 2 * 3 * 5 * 7 + 4 * (2 * 5 * 6 + 6));
    // The backward pass is not counted.
    Tensor w = Tensor::ones({6, 5}).requires_grad_(true);
    const std::int64_t before = outer.count();
    Tensor y = linear(Tensor::ones({4, 5}), w, Tensor());
    sum(y).backward();
    EXPECT_EQ(outer.count() - before, 4 * 2 * 5 * 6);
  }
  FlopCounter fresh;
  EXPECT_EQ(fresh.count(), 0);
}

TEST(Flops, TraceGivesEachModuleItsShapesAndFlops) {
  Generator gen(1);
  auto lenet = build_model("lenet-300-100", gen);
  const auto trace = trace_forward(*lenet, {1, 28, 28});
  EXPECT_EQ(trace.size(), 7u);  // the root and its six children
  EXPECT_EQ(trace.at("").flops, 532810);
  EXPECT_EQ(trace.at("0").input_shape, (Shape{1, 28, 28}));
  EXPECT_EQ(trace.at("0").output_shape, (Shape{784}));
  EXPECT_EQ(trace.at("0").flops, 0);
  EXPECT_EQ(trace.at("1").output_shape, (Shape{300}));
  EXPECT_EQ(trace.at("1").flops, 2 * 784 * 300 + 300);
  EXPECT_EQ(trace.at("2").flops, 0);
  EXPECT_EQ(trace.at("5").flops, 2 * 100 * 10 + 10);
  // The hooks are gone afterwards.
  EXPECT_EQ(flops_per_sample(*lenet, {784}), 532810);
}

TEST(Flops, SparseLinearCountsStoredWeights) {
  Generator gen(1);
  Linear dense(23, 11, gen);
  auto sparse = SparseLinear::from_dense(dense, 0.1);
  EXPECT_EQ(flops_per_sample(*sparse, {23}), 2 * sparse->nnz() + 11);
  EXPECT_EQ(flops_per_sample(*sparse, {4, 23}), 4 * (2 * sparse->nnz() + 11));
}
