// nn/: Module registration, state and the hooked call path, Linear, activations, and an
// end-to-end training sanity check (autograd + SGD on a separable problem). Model
// builders, specs and FLOP counts are in test_models.cpp.
#include <gtest/gtest.h>

#include <cmath>

#include "core/shrink.h"
#include "nn/activation.h"
#include "nn/dropout.h"
#include "nn/flatten.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/sequential.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::nn;

namespace {

std::vector<std::string> names_of(const NamedTensors& named) {
  std::vector<std::string> out;
  for (auto& [name, t] : named) out.push_back(name);
  return out;
}

// A module with its own parameter, a buffer and a nested child, to check naming order.
class Block : public Module {
 public:
  explicit Block(Generator& gen) {
    register_parameter("scale", Tensor::ones({3}));
    register_buffer("running", Tensor::zeros({3}));
    inner = register_module("inner", std::make_shared<Linear>(3, 2, gen));
  }
  std::string type_name() const override { return "Block"; }
  Tensor forward(const Tensor& x) override { return (*inner)(x * parameter("scale")); }
  std::shared_ptr<Linear> inner;
};

std::vector<float> raw_floats(const Tensor& t) { return t.detach().to_vector<float>(); }

using shrink::testing::error_of;

}  // namespace

// ---- Module ----

TEST(Module, NamedParametersAreDottedAndInRegistrationOrder) {
  Generator gen(1);
  Sequential model;
  model.push_back(std::make_shared<Linear>(4, 3, gen));
  model.push_back(make_activation("relu"));
  model.push_back(std::make_shared<Block>(gen));
  const std::vector<std::string> expected{"0.weight", "0.bias", "2.scale", "2.inner.weight",
                                          "2.inner.bias"};
  EXPECT_EQ(names_of(model.named_parameters()), expected);
  EXPECT_EQ(names_of(model.named_buffers()), std::vector<std::string>{"2.running"});
  EXPECT_EQ(model.parameters().size(), 5u);
  EXPECT_EQ(model.num_parameters(), 4 * 3 + 3 + 3 + 3 * 2 + 2);
  for (auto& p : model.parameters()) EXPECT_TRUE(p.requires_grad());

  auto sd = model.state_dict();
  EXPECT_EQ(sd.size(), 6u);
  EXPECT_TRUE(sd.count("2.running"));

  std::vector<std::string> modules;
  for (auto& [name, m] : model.named_modules()) modules.push_back(name + ":" + m->type_name());
  EXPECT_EQ(modules, (std::vector<std::string>{":Sequential", "0:Linear", "1:ReLU", "2:Block",
                                                "2.inner:Linear"}));
}

TEST(Module, DuplicateAndDottedNamesAreRejected) {
  Generator gen(1);
  Block block(gen);
  EXPECT_THROW(block.register_parameter("scale", Tensor::ones({1})), Error);
  EXPECT_THROW(block.register_buffer("inner", Tensor::ones({1})), Error);
  EXPECT_THROW(block.register_parameter("a.b", Tensor::ones({1})), Error);
}

TEST(Module, StateDictRoundTripCopiesValues) {
  Generator gen_a(1), gen_b(2);
  auto a = build_model("mlp:5-4-3", gen_a);
  auto b = build_model("mlp:5-4-3", gen_b);
  const auto before = b->parameter("1.weight").to_vector<float>();
  ASSERT_NE(a->parameter("1.weight").to_vector<float>(), before);
  const Tensor slot = b->parameter("1.weight");  // the handle must stay valid (in-place copy)
  b->load_state_dict(a->state_dict());
  for (auto& [name, t] : a->state_dict())
    EXPECT_EQ(b->state_dict().at(name).to_vector<float>(), t.to_vector<float>()) << name;
  EXPECT_EQ(slot.to_vector<float>(), a->parameter("1.weight").to_vector<float>());
  EXPECT_FALSE(b->parameter("1.weight").grad_fn());
}

TEST(Module, LoadStateDictShapeMismatchNamesTensorAndBothShapes) {
  Generator gen(1);
  auto model = build_model("mlp:5-4-3", gen);
  auto other = build_model("mlp:5-6-3", gen);
  const std::string msg = error_of([&] { model->load_state_dict(other->state_dict()); });
  EXPECT_NE(msg.find("'1.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(4, 5)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(6, 5)"), std::string::npos) << msg;
  // Non-strict loading still refuses a wrong shape.
  EXPECT_THROW(model->load_state_dict(other->state_dict(), false), Error);
  // Adopting shapes replaces the slots; the layers read their sizes from them.
  model->load_state_dict(other->state_dict(), true, Module::ShapeMismatch::Adopt);
  EXPECT_EQ(dynamic_cast<const Linear&>(*model->child("1")).out_features(), 6);
  EXPECT_EQ(raw_floats(model->parameter("1.weight")), raw_floats(other->parameter("1.weight")));
  EXPECT_NE(model->parameter("1.weight").raw_data(), other->parameter("1.weight").raw_data());  // a copy
  EXPECT_TRUE(model->parameter("1.weight").requires_grad());
}

TEST(Module, LoadStateDictNamesMissingAndUnexpectedKeys) {
  Generator gen(1);
  auto model = build_model("mlp:5-4-3", gen);
  StateDict sd = model->state_dict();
  sd.erase("3.bias");
  sd.emplace("9.weight", Tensor::zeros({1}));
  const std::string msg = error_of([&] { model->load_state_dict(sd); });
  EXPECT_NE(msg.find("missing keys: [3.bias]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected keys: [9.weight]"), std::string::npos) << msg;
  EXPECT_NO_THROW(model->load_state_dict(sd, /*strict=*/false));
}

TEST(Module, TrainEvalIsRecursive) {
  Generator gen(1);
  auto model = build_model("lenet-300-100", gen);
  model->eval();
  for (auto& [name, m] : model->named_modules()) EXPECT_FALSE(m->is_training()) << name;
  model->train();
  for (auto& [name, m] : model->named_modules()) EXPECT_TRUE(m->is_training()) << name;
}

TEST(Module, SetParameterReplacesSlotAndLayerSizesFollow) {
  Generator gen(1);
  auto model = build_model("mlp:6-5-4", gen);
  auto linear = std::dynamic_pointer_cast<Linear>(model->child("1"));
  ASSERT_TRUE(linear);
  // Keep output rows {0, 2, 4}: the pruning rewrite.
  const Tensor kept = Tensor::from_vector<std::int64_t>({0, 2, 4}, {3});
  model->set_parameter("1.weight", index_select(linear->weight(), 0, kept));
  model->set_parameter("1.bias", index_select(linear->bias(), 0, kept));
  EXPECT_EQ(linear->out_features(), 3);
  EXPECT_EQ(linear->in_features(), 6);
  EXPECT_TRUE(linear->weight().requires_grad());
  EXPECT_FALSE(linear->weight().grad_fn());  // a leaf again
  EXPECT_THROW(model->set_parameter("1.nothing", Tensor::ones({1})), Error);
  EXPECT_THROW(model->set_parameter("7.weight", Tensor::ones({1})), Error);
}

TEST(Module, ZeroGradDropsGradients) {
  Generator gen(1);
  auto model = build_model("mlp:3-2", gen);
  sum((*model)(Tensor::ones({2, 3}))).backward();
  for (auto& p : model->parameters()) EXPECT_TRUE(p.grad().defined());
  model->zero_grad();
  for (auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Module, ToStringShowsTree) {
  Generator gen(1);
  auto model = build_model("mlp:4-3-2", gen);
  const std::string s = model->to_string();
  EXPECT_NE(s.find("(1): Linear(in_features=4, out_features=3, bias=true)"), std::string::npos) << s;
  EXPECT_NE(s.find("(2): ReLU()"), std::string::npos) << s;
}

// ---- the call path: operator() runs hooks around forward ----

TEST(ModuleHooks, HooksOnASequentialChildSeeItsInputAndOutput) {
  Generator gen(1);
  auto model = build_model("mlp:4-3-2", gen);  // 0 Flatten, 1 Linear, 2 ReLU, 3 Linear
  Module& relu = *model->child("2");
  const Tensor x = Tensor::randn({5, 4}, gen);
  // The ReLU's input is the first Linear's output; its output is relu of that.
  const Tensor pre_relu = linear(x, model->parameter("1.weight"), model->parameter("1.bias"));
  std::vector<std::string> calls;
  Tensor seen_in, seen_out;
  HookHandle pre = relu.register_forward_pre_hook([&](Module& m, const Tensor& in) {
    calls.push_back("pre:" + m.type_name());
    seen_in = in;
  });
  HookHandle post = relu.register_forward_hook([&](Module& m, const Tensor& in, Tensor& out) {
    calls.push_back("post:" + m.type_name());
    EXPECT_EQ(raw_floats(in), raw_floats(seen_in));  // the input the pre-hook saw
    seen_out = out;
  });
  const Tensor y = (*model)(x);
  EXPECT_EQ(calls, (std::vector<std::string>{"pre:ReLU", "post:ReLU"}));
  EXPECT_EQ(raw_floats(seen_in), raw_floats(pre_relu));
  EXPECT_EQ(raw_floats(seen_out), raw_floats(shrink::relu(pre_relu)));
  EXPECT_EQ(raw_floats(y), raw_floats(linear(seen_out, model->parameter("3.weight"),
                                             model->parameter("3.bias"))));

  pre.remove();  // removing one leaves the other
  (*model)(x);
  EXPECT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls.back(), "post:ReLU");
  { HookHandle moved = std::move(post); }  // destroying the handle removes the hook
  (*model)(x);
  EXPECT_EQ(calls.size(), 3u);
}

TEST(ModuleHooks, PostHookMayReplaceTheOutputAndHandlesOutliveModules) {
  Generator gen(1);
  auto model = build_model("mlp:4-3-2", gen);
  const Tensor x = Tensor::randn({2, 4}, gen);
  HookHandle zero = model->child("3")->register_forward_hook(
      [](Module&, const Tensor&, Tensor& out) { out = out * 0.0; });
  EXPECT_EQ(raw_floats((*model)(x)), std::vector<float>(4, 0.0f));
  HookHandle dangling = model->child("1")->register_forward_pre_hook([](Module&, const Tensor&) {});
  model.reset();        // the module goes first ...
  dangling.remove();    // ... and removing its hook afterwards is safe
  EXPECT_NO_THROW(dangling.remove());
}

TEST(ModuleHooks, ExtraInputsAreRejectedByModulesThatTakeNone) {
  Generator gen(1);
  Linear layer(3, 2, gen);
  const Tensor x = Tensor::ones({1, 3});
  EXPECT_EQ(raw_floats(layer(x, {})), raw_floats(layer(x)));
  const std::string msg = error_of([&] { layer(x, {Tensor::ones({1, 1})}); });
  EXPECT_NE(msg.find("Linear: takes one input, got 1 extra"), std::string::npos) << msg;
}

// ---- Linear ----

TEST(Linear, ForwardMatchesReferenceLoop) {
  Generator gen(7);
  Linear layer(5, 3, gen);
  const Tensor x = Tensor::randn({4, 5}, gen);
  const auto y = layer(x).to_vector<float>();
  const auto w = layer.weight().to_vector<float>(), b = layer.bias().to_vector<float>();
  const auto xv = x.to_vector<float>();
  for (int n = 0; n < 4; ++n)
    for (int o = 0; o < 3; ++o) {
      double ref = b[o];
      for (int i = 0; i < 5; ++i) ref += double(xv[n * 5 + i]) * w[o * 5 + i];
      EXPECT_NEAR(y[n * 3 + o], ref, 1e-5) << n << "," << o;
    }
}

TEST(Linear, DefaultInitIsWithinKaimingBound) {
  Generator gen(3);
  Linear layer(400, 50, gen);
  const double bound = 1.0 / std::sqrt(400.0);
  for (const Tensor& t : {layer.weight(), layer.bias()}) {
    const auto v = t.to_vector<float>();
    double lo = 1, hi = -1;
    for (float x : v) {
      lo = std::min<double>(lo, x);
      hi = std::max<double>(hi, x);
    }
    EXPECT_GE(lo, -bound);
    EXPECT_LE(hi, bound);
    if (v.size() > 1000) {  // the weight: uniform draws fill the interval
      EXPECT_LT(lo, -0.9 * bound);
      EXPECT_GT(hi, 0.9 * bound);
    }
  }
}

TEST(Linear, FromTensorsAndWithoutBias) {
  Tensor w = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Linear layer(w);
  EXPECT_FALSE(layer.has_bias());
  EXPECT_EQ(layer.in_features(), 3);
  EXPECT_EQ(layer.out_features(), 2);
  const auto y = layer(Tensor::from_vector<float>({1, 0, -1}, {1, 3})).to_vector<float>();
  EXPECT_EQ(y, (std::vector<float>{-2, -2}));
  EXPECT_THROW(Linear(w, Tensor::zeros({3})), Error);
  EXPECT_THROW(Linear(Tensor::zeros({3})), Error);
  EXPECT_EQ(names_of(layer.named_parameters()), std::vector<std::string>{"weight"});
}

// ---- activations, dropout, flatten ----

TEST(Layers, ActivationsMatchCoreOps) {
  const Tensor x = Tensor::from_vector<float>({-7, -1, 0, 0.5, 3, 8}, {2, 3});
  for (const char* name : {"relu", "relu6", "gelu", "tanh", "sigmoid"}) {
    auto act = make_activation(name);
    EXPECT_EQ(activation_name(*act), name);
    const auto y = (*act)(x).to_vector<float>();
    const auto xv = x.to_vector<float>();
    for (std::size_t i = 0; i < xv.size(); ++i) {
      const double v = xv[i];
      double ref = 0;
      if (std::string(name) == "relu") ref = std::max(v, 0.0);
      if (std::string(name) == "relu6") ref = std::min(std::max(v, 0.0), 6.0);
      if (std::string(name) == "gelu") ref = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
      if (std::string(name) == "tanh") ref = std::tanh(v);
      if (std::string(name) == "sigmoid") ref = 1 / (1 + std::exp(-v));
      EXPECT_NEAR(y[i], ref, 1e-5) << name << " at " << v;
    }
  }
  EXPECT_THROW(make_activation("swish"), Error);
}

TEST(Layers, DropoutIsIdentityInEvalAndScalesInTraining) {
  Generator gen(5);
  Dropout drop(0.5, gen);
  const Tensor x = Tensor::ones({1000});
  drop.eval();
  EXPECT_EQ(drop(x).to_vector<float>(), x.to_vector<float>());
  drop.train();
  int zeros = 0;
  for (float v : drop(x).to_vector<float>()) {
    EXPECT_TRUE(v == 0.0f || v == 2.0f);
    zeros += v == 0.0f;
  }
  EXPECT_GT(zeros, 400);
  EXPECT_LT(zeros, 600);
  EXPECT_THROW(Dropout(1.0, gen), Error);
}

TEST(Layers, FlattenKeepsBatchAxis) {
  Flatten flat;
  EXPECT_EQ(flat(Tensor::zeros({2, 1, 4, 3})).shape(), (Shape{2, 12}));
}

// ---- end to end ----

// Two Gaussian-ish blobs per class on a 2-D plane (4 classes at the corners), fitted by
// a small MLP with plain SGD: autograd, Linear, cross_entropy and the optimizer together.
TEST(Training, SmallMlpLearnsSeparableProblem) {
  Generator gen(11);
  const int n = 256;
  std::vector<float> xs;
  std::vector<std::int64_t> ys;
  for (int i = 0; i < n; ++i) {
    const int cls = i % 4;
    const double cx = (cls & 1) ? 2.0 : -2.0, cy = (cls & 2) ? 2.0 : -2.0;
    xs.push_back(static_cast<float>(cx + (gen.next_double() - 0.5) * 2));
    xs.push_back(static_cast<float>(cy + (gen.next_double() - 0.5) * 2));
    ys.push_back(cls);
  }
  const Tensor x = Tensor::from_vector(xs, {n, 2});
  const Tensor y = Tensor::from_vector(ys, {n});
  auto model = build_model("mlp:2-16-4", gen);
  SGD opt(model->named_parameters(), 0.1, 0.9);
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    Tensor loss = cross_entropy((*model)(x), y);
    loss.backward();
    opt.step();
    if (step == 0) first_loss = loss.item();
    last_loss = loss.item();
  }
  NoGradGuard no_grad;
  EXPECT_LT(last_loss, 0.1 * first_loss);
  EXPECT_GE(accuracy((*model)(x), y), 0.98);
}

TEST(ModuleCuda, ToMovesParametersAndGradients) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  Generator gen(2);
  auto model = build_model("mlp:20-9-4", gen);
  const Tensor x = Tensor::randn({3, 20}, gen);
  const auto cpu_out = (*model)(x).to_vector<float>();
  const auto weight = model->parameter("1.weight").to_vector<float>();
  sum((*model)(x)).backward();
  model->to(Device::cuda());
  for (auto& [name, p] : model->named_parameters()) {
    EXPECT_TRUE(p.device().is_cuda()) << name;
    EXPECT_TRUE(p.requires_grad()) << name;
    EXPECT_TRUE(p.grad().defined() && p.grad().device().is_cuda()) << name;
  }
  const auto gpu_out = (*model)(x.to(Device::cuda())).to_vector<float>();
  for (std::size_t i = 0; i < cpu_out.size(); ++i) EXPECT_NEAR(gpu_out[i], cpu_out[i], 1e-5);
  model->to(Device::cpu());
  EXPECT_EQ(model->parameter("1.weight").to_vector<float>(), weight);
}
