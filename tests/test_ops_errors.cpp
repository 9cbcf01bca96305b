// Ops' errors: every message names the op and the offending shapes, axes, indices or dtypes,
// and is a shrink::Error (never a crash or another exception type).
#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/shrink.h"

namespace shrink {
namespace {

void expect_error(const std::function<void()>& f, std::initializer_list<const char*> parts) {
  try {
    f();
    ADD_FAILURE() << "no shrink::Error thrown; expected one mentioning " << *parts.begin();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-shrink::Error: " << e.what();
  }
}

TEST(OpsErrors, ShapeMismatchesNameOpAndShapes) {
  Tensor a23 = Tensor::zeros({2, 3}), a45 = Tensor::zeros({4, 5});
  expect_error([&] { matmul(a23, a45); }, {"matmul", "(2, 3)", "(4, 5)"});
  expect_error([&] { matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 4})); },
               {"matmul", "(2, 2, 3)", "(3, 3, 4)"});
  expect_error([&] { matmul(Tensor::zeros({3}), a23); }, {"matmul", "(3,)"});
  expect_error([&] { add(a23, a45); }, {"add", "(2, 3)", "(4, 5)"});
  expect_error([&] { sub(a23, Tensor::zeros({4})); }, {"sub", "(2, 3)", "(4,)"});
  expect_error([&] { mul(a23, Tensor::zeros({3, 3})); }, {"mul", "(2, 3)", "(3, 3)"});
  expect_error([&] { div(a23, Tensor::zeros({2})); }, {"div", "(2, 3)", "(2,)"});
  expect_error([&] { linear(a23, a45, Tensor()); }, {"linear", "(2, 3)", "(4, 5)"});
  expect_error([&] { linear(a23, Tensor::zeros({4, 3}), Tensor::zeros({5})); }, {"linear", "(5,)"});
  expect_error([&] { expand(a23, {4, 3}); }, {"expand", "(2, 3)", "(4, 3)"});
  expect_error([&] { concat({a23, a45}, 0); }, {"concat", "(4, 5)", "(2, 3)"});
  expect_error([&] { concat({a23, Tensor::zeros({2, 3, 1})}, 0); }, {"concat", "rank"});
  expect_error([&] { concat({}, 0); }, {"concat"});
  expect_error([&] { reshape(a23, {4, 2}); }, {"reshape", "(2, 3)", "(4, 2)"});
  expect_error([&] { permute(a23, {0}); }, {"permute", "(2, 3)"});
  expect_error([&] { cross_entropy(Tensor::zeros({3, 4}), Tensor::zeros({2}, DType::Int64)); },
               {"cross_entropy", "(2,)", "(3, 4)"});
  expect_error([&] { cross_entropy(Tensor::zeros({3}), Tensor::zeros({3}, DType::Int64)); },
               {"cross_entropy", "(3,)"});
}

TEST(OpsErrors, Conv2dArgumentsNameOpAndShapes) {
  const Tensor x = Tensor::zeros({2, 4, 6, 5}), w = Tensor::zeros({6, 4, 3, 3});
  auto with = [](auto set) {
    Conv2dOptions o;
    set(o);
    return o;
  };
  expect_error([&] { conv2d(Tensor::zeros({4, 6, 5}), w, Tensor()); },
               {"conv2d", "4-D", "(4, 6, 5)", "(6, 4, 3, 3)"});
  expect_error([&] { conv2d(x, Tensor::zeros({6, 4, 3}), Tensor()); },
               {"conv2d", "4-D", "(6, 4, 3)", "(2, 4, 6, 5)"});
  expect_error([&] { conv2d(x, Tensor::zeros({6, 3, 3, 3}), Tensor()); },
               {"conv2d", "(2, 4, 6, 5)", "has 4 channels", "(6, 3, 3, 3)", "expects 3"});
  expect_error([&] { conv2d(x, Tensor::zeros({6, 1, 3, 3}), Tensor(), with([](auto& o) { o.groups = 2; })); },
               {"conv2d", "has 4 channels", "(6, 1, 3, 3)", "groups 2"});
  expect_error([&] { conv2d(x, Tensor::zeros({6, 1, 3, 3}), Tensor(), with([](auto& o) { o.groups = 3; })); },
               {"conv2d", "input channels 4", "groups 3", "(2, 4, 6, 5)"});
  expect_error([&] { conv2d(x, Tensor::zeros({5, 2, 3, 3}), Tensor(), with([](auto& o) { o.groups = 2; })); },
               {"conv2d", "output channels 5", "groups 2", "(5, 2, 3, 3)"});
  expect_error([&] { conv2d(x, w, Tensor(), with([](auto& o) { o.groups = 0; })); }, {"conv2d", "groups"});
  expect_error([&] { conv2d(x, w, Tensor::zeros({5})); }, {"conv2d", "bias", "(5,)", "(6, 4, 3, 3)"});
  expect_error([&] { conv2d(x, w, Tensor::zeros({6, 1})); }, {"conv2d", "bias", "(6, 1)"});
  expect_error([&] { conv2d(x, w, Tensor(), with([](auto& o) { o.stride_w = 0; })); },
               {"conv2d", "stride", "(1, 0)"});
  expect_error([&] { conv2d(x, w, Tensor(), with([](auto& o) { o.dilation_h = 0; })); },
               {"conv2d", "dilation", "(0, 1)"});
  expect_error([&] { conv2d(x, w, Tensor(), with([](auto& o) { o.pad_h = -1; })); },
               {"conv2d", "padding", "(-1, 0)"});
  // 7 x 3 kernel over 6 x 5 input (padded 6 x 5): too tall.
  expect_error([&] { conv2d(x, Tensor::zeros({6, 4, 7, 3}), Tensor()); },
               {"conv2d", "kernel (7, 3)", "larger than the padded input (6, 5)", "(2, 4, 6, 5)",
                "(6, 4, 7, 3)"});
  // 3 x 3 dilated by 3 spans 7 x 7: larger than 6 x 5 padded by (0, 1) = 6 x 7.
  expect_error([&] {
    conv2d(x, w, Tensor(), with([](auto& o) { o.dilation_h = o.dilation_w = 3, o.pad_w = 1; }));
  }, {"conv2d", "dilated span (7, 7)", "padded input (6, 7)"});
  expect_error([&] { conv2d(x, Tensor::zeros({6, 4, 3, 3}, DType::Float64), Tensor()); },
               {"conv2d", "float32", "float64"});
  expect_error([&] { conv2d(x, w, Tensor::zeros({6}, DType::Float64)); }, {"conv2d", "float64"});
  expect_error([&] { conv2d(Tensor::zeros({2, 4, 6, 5}, DType::Int64), w, Tensor()); },
               {"conv2d", "int64"});
  expect_error([&] { conv2d(x, Tensor(), Tensor()); }, {"conv2d", "undefined"});
  // At the limit the kernel fits: padding makes a 6 x 5 input room for a 7 x 7 kernel.
  EXPECT_EQ(conv2d(x, Tensor::zeros({6, 4, 7, 7}), Tensor(), with([](auto& o) { o.pad_h = 1, o.pad_w = 1; }))
                .shape(),
            (Shape{2, 6, 2, 1}));
}

TEST(OpsErrors, BadAxes) {
  Tensor x = Tensor::zeros({3, 5, 7});
  expect_error([&] { sum(x, {3}); }, {"sum", "axis 3"});
  expect_error([&] { sum(x, {-4}); }, {"sum", "axis -4"});
  expect_error([&] { sum(x, {1, -2}); }, {"sum", "repeated"});
  expect_error([&] { mean(x, {5}); }, {"mean", "axis 5"});
  expect_error([&] { max(x, 3); }, {"max", "axis 3"});
  expect_error([&] { argmax(x, -5); }, {"argmax", "axis -5"});
  expect_error([&] { softmax(x, 3); }, {"softmax", "axis 3"});
  expect_error([&] { log_softmax(x, -4); }, {"log_softmax", "axis -4"});
  expect_error([&] { transpose(x, 0, 3); }, {"transpose", "axis 3"});
  expect_error([&] { permute(x, {0, 1, 1}); }, {"permute", "repeated"});
  expect_error([&] { permute(x, {0, 1, 3}); }, {"permute", "axis 3"});
  expect_error([&] { concat({x, x}, 3); }, {"concat", "axis 3"});
  expect_error([&] { slice(x, 3, 0, 1); }, {"slice", "axis 3"});
  expect_error([&] { slice(x, 0, 0, 1, 0); }, {"slice", "step"});
  expect_error([&] { slice(x, 0, 4, 5); }, {"slice", "start 4"});
  expect_error([&] { flatten(x, 3); }, {"flatten", "axis 3"});
  expect_error([&] { x.size(3); }, {"axis 3"});
  expect_error([&] { max(Tensor::zeros({3, 0}), 1); }, {"max", "empty"});
}

TEST(OpsErrors, IndexAndLabelRanges) {
  Tensor x = Tensor::zeros({3, 5});
  auto idx = [](std::vector<std::int64_t> v) {
    return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())});
  };
  expect_error([&] { index_select(x, 1, idx({0, 5})); }, {"index_select", "index 5", "(3, 5)"});
  expect_error([&] { index_select(x, 0, idx({-1})); }, {"index_select", "index -1"});
  expect_error([&] { index_select(x, 0, Tensor::zeros({2})); }, {"index_select", "int64"});
  expect_error([&] { index_select(x, 0, Tensor::zeros({1, 1}, DType::Int64)); }, {"index_select", "(1, 1)"});
  expect_error([&] { cross_entropy(x, idx({0, 5, 1})); }, {"cross_entropy", "label 5", "5 classes"});
  expect_error([&] { cross_entropy(x, idx({0, -1, 1})); }, {"cross_entropy", "label -1"});
  expect_error([&] { cross_entropy(x, Tensor::zeros({3})); }, {"cross_entropy", "int64", "float32"});
  expect_error([&] { cross_entropy(x, idx({0, 1, 2}), 1.5); }, {"cross_entropy", "label_smoothing"});
  Generator gen(0);
  expect_error([&] { dropout(x, 1.0, true, gen); }, {"dropout", "p"});
  expect_error([&] { dropout(x, -0.1, true, gen); }, {"dropout", "p"});
  expect_error([&] { accuracy(x, idx({0})); }, {"accuracy", "(3, 5)", "(1,)"});
}

TEST(OpsErrors, MismatchedDtypes) {
  Tensor f = Tensor::zeros({2, 3}), d = Tensor::zeros({2, 3}, DType::Float64);
  Tensor i = Tensor::zeros({2, 3}, DType::Int64);
  expect_error([&] { add(f, d); }, {"add", "float32", "float64"});
  expect_error([&] { mul(d, f); }, {"mul", "float64", "float32"});
  expect_error([&] { matmul(f, Tensor::zeros({3, 2}, DType::Float64)); }, {"matmul", "float32", "float64"});
  expect_error([&] { linear(f, Tensor::zeros({4, 3}, DType::Float64), Tensor()); }, {"linear", "float64"});
  expect_error([&] { concat({f, d}, 0); }, {"concat", "float32", "float64"});
  expect_error([&] { add(i, i); }, {"add", "int64"});
  expect_error([&] { exp(i); }, {"exp", "int64"});
  expect_error([&] { sum(i); }, {"sum", "int64"});
  expect_error([&] { softmax(i); }, {"softmax", "int64"});
  expect_error([&] { add(Tensor(), f); }, {"add", "undefined"});
}

TEST(OpsErrors, PoolingNamesOpShapesAndWindow) {
  const Tensor x = Tensor::zeros({2, 3, 5, 4});
  auto opts = [](std::int64_t k, std::int64_t s, std::int64_t p) {
    Pool2dOptions o;
    o.kernel_h = o.kernel_w = k;
    o.stride_h = o.stride_w = s;
    o.pad_h = o.pad_w = p;
    return o;
  };
  for (auto pool : {max_pool2d, avg_pool2d}) {
    const char* op = pool == max_pool2d ? "max_pool2d" : "avg_pool2d";
    expect_error([&] { pool(Tensor::zeros({3, 5, 4}), opts(2, 2, 0)); }, {op, "4-D", "(3, 5, 4)"});
    expect_error([&] { pool(x, opts(6, 1, 0)); }, {op, "6x6", "larger than the padded input", "5x4", "(2, 3, 5, 4)"});
    expect_error([&] { pool(x, opts(7, 1, 1)); }, {op, "7x7", "7x6"});
    expect_error([&] { pool(x, opts(3, 1, 2)); }, {op, "padding 2x2", "half the kernel 3x3"});
    expect_error([&] { pool(x, opts(2, 0, 0)); }, {op, "stride", "0x0"});
    expect_error([&] { pool(x, opts(0, 1, 0)); }, {op, "kernel", "0x0"});
    expect_error([&] { pool(x, opts(2, 1, -1)); }, {op, "padding", "-1x-1"});
    expect_error([&] { pool(Tensor::zeros({1, 1, 0, 4}), opts(1, 1, 0)); }, {op, "empty", "(1, 1, 0, 4)"});
    expect_error([&] { pool(Tensor::zeros({1, 1, 2, 2}, DType::Int64), opts(2, 2, 0)); }, {op, "int64"});
  }
  expect_error([&] { adaptive_avg_pool2d(x, 0, 1); }, {"adaptive_avg_pool2d", "0x1", "(2, 3, 5, 4)"});
  expect_error([&] { adaptive_avg_pool2d(x, 2, -1); }, {"adaptive_avg_pool2d", "2x-1"});
  expect_error([&] { adaptive_avg_pool2d(Tensor::zeros({3, 4}), 1, 1); },
               {"adaptive_avg_pool2d", "4-D", "(3, 4)"});
}

TEST(OpsErrors, LayerNormNamesOpAndShapes) {
  const Tensor x = Tensor::zeros({2, 3, 5}), d5 = Tensor::ones({5});
  expect_error([&] { layer_norm(x, Tensor::ones({3}), d5); }, {"layer_norm", "gamma", "(5)", "(2, 3, 5)", "(3,)"});
  expect_error([&] { layer_norm(x, d5, Tensor::ones({5, 1})); }, {"layer_norm", "beta", "(5, 1)"});
  expect_error([&] { layer_norm(x, Tensor::ones({5}, DType::Float64), Tensor()); },
               {"layer_norm", "gamma", "float64", "float32"});
  expect_error([&] { layer_norm(x, Tensor(), Tensor(), 0.0); }, {"layer_norm", "eps", "0"});
  expect_error([&] { layer_norm(Tensor::zeros({3, 0}), Tensor(), Tensor()); }, {"layer_norm", "empty", "(3, 0)"});
  expect_error([&] { layer_norm(Tensor::zeros({}), Tensor(), Tensor()); }, {"layer_norm", "axis"});
  expect_error([&] { layer_norm(Tensor::zeros({2, 2}, DType::Int64), Tensor(), Tensor()); }, {"layer_norm"});
}

TEST(OpsErrors, EmbeddingNamesTheIdAndTheVocabulary) {
  const Tensor w = Tensor::zeros({7, 3});
  const Tensor ids = reshape(Tensor::from_vector<std::int64_t>({1, 2, 7, 0}, {4}), {2, 2});
  expect_error([&] { embedding(ids, w); }, {"embedding", "7", "vocabulary of 7", "(7, 3)", "(2, 2)"});
  expect_error([&] { embedding(Tensor::from_vector<std::int64_t>({-1}, {1}), w); }, {"embedding", "-1"});
  expect_error([&] { embedding(Tensor::zeros({2}), w); }, {"embedding", "ids", "int64", "float32"});
  expect_error([&] { embedding(Tensor::from_vector<std::int64_t>({0}, {1}), Tensor::zeros({7})); },
               {"embedding", "weight", "(vocabulary, dim)", "(7,)"});
}

TEST(OpsErrors, AttentionNamesTheTensorAndTheShapes) {
  const Tensor q = Tensor::zeros({2, 4, 5, 8}), k = Tensor::zeros({2, 4, 6, 8}), v = Tensor::zeros({2, 4, 6, 3});
  expect_error([&] { scaled_dot_product_attention(q, Tensor::zeros({2, 4, 6, 7}), v); },
               {"scaled_dot_product_attention", "k", "(2, 4, 6, 7)", "8"});
  expect_error([&] { scaled_dot_product_attention(q, k, Tensor::zeros({2, 4, 5, 3})); },
               {"scaled_dot_product_attention", "v", "(2, 4, 5, 3)", "(2, 4, 6, 8)"});
  expect_error([&] { scaled_dot_product_attention(q, Tensor::zeros({2, 3, 6, 8}), v); },
               {"scaled_dot_product_attention", "leading", "(2, 3, 6, 8)"});
  expect_error([&] { scaled_dot_product_attention(q, k, v, Tensor::zeros({2, 1, 1, 5})); },
               {"scaled_dot_product_attention", "mask", "(2, 1, 1, 5)", "(2, 4, 5, 6)"});
  expect_error([&] { scaled_dot_product_attention(q, k, v, Tensor::zeros({3, 1, 1, 6})); },
               {"mask", "(3, 1, 1, 6)"});
  expect_error([&] { scaled_dot_product_attention(q, k.to(DType::Float64), v); },
               {"scaled_dot_product_attention", "k", "float64", "float32"});
  expect_error([&] { attention_mask_bias(Tensor::zeros({2, 3, 1}), DType::Float32); },
               {"attention mask", "(batch, tokens)", "(2, 3, 1)"});
  expect_error([&] { attention_mask_bias(Tensor::from_vector<std::int64_t>({1, 0, 5}, {1, 3}), DType::Float32); },
               {"attention mask", "1 (a token) or 0 (padding)", "5", "element 2"});
}

TEST(OpsErrors, BatchNormNamesOpAndShapes) {
  const Tensor x = Tensor::zeros({4, 3, 5}), c3 = Tensor::ones({3}), c4 = Tensor::ones({4});
  expect_error([&] { batch_norm(Tensor::zeros({3}), Tensor(), Tensor(), Tensor(), Tensor(), true); },
               {"batch_norm", "(n, c, *)", "(3,)"});
  expect_error([&] { batch_norm(x, c4, c3, Tensor(), Tensor(), true); },
               {"batch_norm", "gamma", "(3)", "(4, 3, 5)", "(4,)"});
  expect_error([&] { batch_norm(x, c3, Tensor::ones({3, 1}), Tensor(), Tensor(), true); },
               {"batch_norm", "beta", "(3, 1)"});
  expect_error([&] { batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3}), Tensor::ones({2}), true); },
               {"batch_norm", "running_var", "(2,)"});
  expect_error([&] { batch_norm(x, Tensor::ones({3}, DType::Float64), Tensor(), Tensor(), Tensor(), true); },
               {"batch_norm", "gamma", "float64", "float32"});
  expect_error([&] { batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3}), Tensor(), true); },
               {"batch_norm", "running_mean and running_var"});
  expect_error([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false); },
               {"batch_norm", "evaluation", "running_mean", "(4, 3, 5)"});
  expect_error([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 1.5); },
               {"batch_norm", "momentum", "1.5"});
  expect_error([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, -0.1); },
               {"batch_norm", "momentum"});
  expect_error([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 0.0); },
               {"batch_norm", "eps", "0"});
  // One value per channel: PyTorch refuses training too (the unbiased variance is 0 / 0).
  expect_error([&] { batch_norm(Tensor::zeros({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true); },
               {"batch_norm", "more than one value per channel", "(1, 3)"});
  expect_error([&] { batch_norm(Tensor::zeros({1, 3, 1, 1}), c3, c3, Tensor::zeros({3}), Tensor::ones({3}), true); },
               {"batch_norm", "more than one value per channel", "(1, 3, 1, 1)"});
  Tensor buffer = Tensor::zeros({3});
  buffer.requires_grad_();
  expect_error([&] { batch_norm(x, Tensor(), Tensor(), buffer, Tensor::ones({3}), true); },
               {"batch_norm", "running statistics", "grad"});
  expect_error([&] { batch_norm(Tensor::zeros({4, 3}, DType::Int64), Tensor(), Tensor(), Tensor(), Tensor(), true); },
               {"batch_norm", "int64"});
}

}  // namespace
}  // namespace shrink
