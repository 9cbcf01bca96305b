// The transformer modules (nn/attention.h, nn/transformer.h) and the vit-tiny family
// (nn/models_transformer.h): multi-head attention against a per-head plain loop, padding,
// head counts read from the weights, refused inconsistent checkpoints, parameter and FLOP
// counts by hand, save -> load -> forward.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "core/shrink.h"
#include "datasets/sequence_task.h"
#include "kernels/reference/attention.h"
#include "nn/attention.h"
#include "nn/checkpoint.h"
#include "nn/flops.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/transformer.h"
#include "tests/test_helpers.h"

using namespace shrink;
using namespace shrink::nn;
using namespace shrink::testing;

namespace {

std::vector<double> doubles(const Tensor& t) { return t.detach().to(DType::Float64).to_vector<double>(); }

// y (rows, out) = x (rows, in) W^T + b, in double.
std::vector<double> affine(const std::vector<double>& x, std::int64_t rows, const Linear& l) {
  const std::vector<double> w = doubles(l.weight()), b = doubles(l.bias());
  const std::int64_t in = l.in_features(), out = l.out_features();
  std::vector<double> y(static_cast<size_t>(rows * out));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      double acc = b[o];
      for (std::int64_t i = 0; i < in; ++i) acc += x[r * in + i] * w[o * in + i];
      y[r * out + o] = acc;
    }
  return y;
}

// Multi-head attention of x (batch, tokens, d) by hand: project, attend per head with the
// reference loop (mask (batch, tokens) of 1/0 or empty), concatenate, project out.
std::vector<double> attention_by_hand(MultiheadAttention& m, const Tensor& x, const std::vector<double>& mask) {
  const std::int64_t batch = x.size(0), tokens = x.size(1), rows = batch * tokens;
  const std::int64_t hd = m.head_dim(), heads = m.heads(), width = heads * hd;
  const auto lin = [&](const char* name) -> const Linear& { return *std::dynamic_pointer_cast<Linear>(m.child(name)); };
  const std::vector<double> xs = doubles(x);
  const std::vector<double> q = affine(xs, rows, lin("q_proj")), k = affine(xs, rows, lin("k_proj")),
                            v = affine(xs, rows, lin("v_proj"));
  std::vector<double> concat(static_cast<size_t>(rows * width));
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t h = 0; h < heads; ++h) {
      std::vector<double> qh(tokens * hd), kh(tokens * hd), vh(tokens * hd), oh(tokens * hd),
          bias(static_cast<size_t>(tokens * tokens));
      for (std::int64_t t = 0; t < tokens; ++t)
        for (std::int64_t c = 0; c < hd; ++c) {
          const std::int64_t at = (b * tokens + t) * width + h * hd + c;
          qh[t * hd + c] = q[at], kh[t * hd + c] = k[at], vh[t * hd + c] = v[at];
        }
      for (std::int64_t i = 0; i < tokens; ++i)
        for (std::int64_t j = 0; j < tokens; ++j)
          bias[i * tokens + j] = mask.empty() || mask[b * tokens + j] == 1 ? 0.0 : -1e9;
      kernels::reference::attention<double>(1, tokens, tokens, hd, hd, 1.0 / std::sqrt(static_cast<double>(hd)),
                                            qh.data(), kh.data(), vh.data(), bias.data(), oh.data());
      for (std::int64_t t = 0; t < tokens; ++t)
        for (std::int64_t c = 0; c < hd; ++c) concat[(b * tokens + t) * width + h * hd + c] = oh[t * hd + c];
    }
  return affine(concat, rows, lin("out_proj"));
}

std::shared_ptr<Module> build(const nlohmann::json& spec, std::uint64_t seed = 1) {
  Generator gen(seed);
  return build_from_spec(spec, gen);
}

}  // namespace

TEST(MultiheadAttention, EqualsPerHeadAttentionByHandWithAndWithoutPadding) {
  Generator gen(3);
  MultiheadAttention m(12, 3, true, gen);
  for (const char* name : {"q_proj.bias", "k_proj.bias", "v_proj.bias", "out_proj.bias"})  // nonzero biases
    m.set_parameter(name, Tensor::uniform({12}, -0.5, 0.5, gen));
  const Tensor x = Tensor::randn({2, 5, 12}, gen);
  EXPECT_TRUE(all_close("no mask", m(x), Tensor::from_vector(attention_by_hand(m, x, {}), {2, 5, 12}), 1e-5, 1e-5));
  const std::vector<double> mask = {1, 1, 1, 0, 0, 1, 1, 1, 1, 0};
  const Tensor bias = attention_mask_bias(Tensor::from_vector(mask, {2, 5}), DType::Float32);
  EXPECT_TRUE(all_close("padding mask", m(x, {bias}),
                        Tensor::from_vector(attention_by_hand(m, x, mask), {2, 5, 12}), 1e-5, 1e-5));
}

TEST(MultiheadAttention, PaddedTokensChangeNoRealTokensOutput) {
  Generator gen(4);
  EncoderOptions o;
  o.d_model = 16, o.heads = 4, o.ffn = 24, o.layers = 2, o.dropout = 0;
  TransformerEncoder enc(o, gen);
  enc.eval();
  const std::vector<double> mask = {1, 1, 0, 0, 1, 1, 1, 0};
  const Tensor bias = attention_mask_bias(Tensor::from_vector(mask, {2, 4}), DType::Float32);
  const Tensor x = Tensor::randn({2, 4, 16}, gen);
  std::vector<float> other = x.to_vector<float>();
  for (std::int64_t t = 0; t < 8; ++t)
    if (mask[t] == 0)
      for (int c = 0; c < 16; ++c) other[t * 16 + c] += 3.0f;  // new padding content
  const std::vector<float> a = enc(x, {bias}).to_vector<float>(),
                           b = enc(Tensor::from_vector(other, {2, 4, 16}), {bias}).to_vector<float>();
  int compared = 0;
  for (std::int64_t t = 0; t < 8; ++t)
    for (int c = 0; c < 16; ++c)
      if (mask[t] == 1) {
        EXPECT_NEAR(a[t * 16 + c], b[t * 16 + c], 1e-6) << "token " << t;
        ++compared;
      }
  EXPECT_EQ(compared, 5 * 16);
  // The padding content does change the padded rows' own outputs: the mask is what holds.
  EXPECT_NE(a[2 * 16], b[2 * 16]);
}

TEST(MultiheadAttention, KnowsItsHeadsFromTheWeights) {
  Generator gen(5);
  MultiheadAttention m(8, 4, true, gen);
  EXPECT_EQ(m.heads(), 4);
  EXPECT_EQ(m.head_dim(), 2);
  for (const char* name : {"q_proj", "k_proj", "v_proj"}) {  // keep heads 0 and 3
    m.set_parameter(std::string(name) + ".weight", Tensor::randn({4, 8}, gen));
    m.set_parameter(std::string(name) + ".bias", Tensor::randn({4}, gen));
  }
  m.set_parameter("out_proj.weight", Tensor::randn({8, 4}, gen));
  m.check_invariants();
  EXPECT_EQ(m.heads(), 2);
  EXPECT_EQ(m(Tensor::randn({3, 5, 8}, gen)).shape(), (Shape{3, 5, 8}));
}

TEST(MultiheadAttention, BadWidthsAndMasksAreErrorsNamingTheTensor) {
  Generator gen(6);
  EXPECT_NE(error_of([&] { MultiheadAttention(10, 3, true, gen); }).find("d_model (10) must be divisible by heads (3)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { build_from_spec({{"model", "vit-tiny"}, {"dim", 10}, {"heads", 3}}, gen); }).find("divisible"),
            std::string::npos);
  MultiheadAttention m(8, 2, true, gen);
  m.set_parameter("k_proj.weight", Tensor::randn({6, 8}, gen));
  EXPECT_NE(error_of([&] { m.check_invariants(); }).find("k_proj.weight (6, 8)"), std::string::npos);
  MultiheadAttention m2(8, 2, true, gen);
  const std::string bad_mask = error_of([&] { m2(Tensor::randn({2, 3, 8}, gen), {Tensor::zeros({2, 1, 1, 4})}); });
  EXPECT_NE(bad_mask.find("mask (2, 1, 1, 4)"), std::string::npos) << bad_mask;
  EXPECT_NE(error_of([&] { m2(Tensor::randn({2, 3, 7}, gen)); }).find("(2, 3, 7)"), std::string::npos);
}

TEST(VitTiny, MapsImagesToLogitsWithThePyTorchLayerNames) {
  auto model = build({{"model", "vit-tiny"}});
  model->eval();
  Generator gen(2);
  EXPECT_EQ((*model)(Tensor::randn({3, 1, 28, 28}, gen)).shape(), (Shape{3, 10}));
  for (const char* name : {"patch_embed.weight", "cls_token", "pos_embed", "encoder.layers.0.self_attn.q_proj.weight",
                           "encoder.layers.3.self_attn.out_proj.bias", "encoder.layers.2.linear1.weight",
                           "encoder.layers.1.linear2.bias", "encoder.layers.0.norm1.weight", "encoder.layers.3.norm2.bias",
                           "encoder.norm.weight", "head.weight"})
    EXPECT_TRUE(model->has_parameter(name)) << name;
  EXPECT_EQ(model->parameter("pos_embed").shape(), (Shape{1, 17, 128}));
  auto patch4 = build({{"model", "vit-tiny"}, {"patch", 4}, {"in_channels", 3}, {"input_size", 32}, {"classes", 7}});
  EXPECT_EQ(patch4->parameter("pos_embed").shape(), (Shape{1, 65, 128}));
  EXPECT_EQ((*patch4)(Tensor::randn({2, 3, 32, 32}, gen)).shape(), (Shape{2, 7}));
  EXPECT_NE(error_of([] { build({{"model", "vit-tiny"}, {"patch", 5}}); }).find("multiple of the patch size 5"),
            std::string::npos);
}

TEST(VitTiny, ParameterAndFlopCountsMatchHandCounts) {
  const std::int64_t d = 128, f = 512, layers = 4, t = 17, classes = 10;
  const std::int64_t per_layer = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 4 * d;
  const std::int64_t params = (d * 49 + d) + d + t * d + layers * per_layer + 2 * d + (d * classes + classes);
  auto model = build({{"model", "vit-tiny"}});
  EXPECT_EQ(model->num_parameters(), params);
  // Linears 2 in out + out per token; QK^T and PV 2 T T d each; the patch conv per patch.
  const std::int64_t layer_flops = 4 * t * (2 * d * d + d) + 2 * (2 * t * t * d) + t * (2 * d * f + f) + t * (2 * f * d + d);
  const std::int64_t flops = 16 * (2 * d * 49 + d) + layers * layer_flops + (2 * d * classes + classes);
  EXPECT_EQ(flops_per_sample(*model, {1, 28, 28}), flops);
}

TEST(VitTiny, SaveLoadForwardGivesTheSameNumbersAndACraftedFileIsRefused) {
  auto model = build({{"model", "vit-tiny"}, {"dim", 32}, {"heads", 4}, {"mlp", 48}, {"depth", 2}}, 5);
  model->eval();
  Generator gen(9);
  const Tensor x = Tensor::randn({2, 1, 28, 28}, gen);
  const Tensor before = (*model)(x);
  const std::string path = ::testing::TempDir() + "vit.safetensors";
  save_checkpoint(path, *model);
  Generator other(77);
  auto loaded = load_checkpoint(path, other).model;
  loaded->eval();
  EXPECT_EQ((*loaded)(x).to_vector<float>(), before.to_vector<float>());

  // The same file with one layer's V projection two rows short: refused, naming the tensor.
  SafetensorsContents file = load_safetensors(path);
  file.tensors["encoder.layers.1.self_attn.v_proj.weight"] = Tensor::zeros({30, 32});
  std::vector<std::pair<std::string, Tensor>> tensors(file.tensors.begin(), file.tensors.end());
  const std::string crafted = ::testing::TempDir() + "vit_bad_v.safetensors";
  save_safetensors(crafted, tensors, file.metadata);
  const std::string error = error_of([&] { load_checkpoint(crafted, other); });
  EXPECT_NE(error.find("v_proj.weight (30, 32)"), std::string::npos) << error;
  EXPECT_NE(error.find("encoder.layers.1.self_attn"), std::string::npos) << error;
}

TEST(MajorityTask, IsTheSameEveryTimeAndEachLabelIsTheStrictMajorityMarker) {
  datasets::MajorityTaskOptions o;
  o.train = 300, o.test = 100;
  const datasets::Dataset a = datasets::majority_task(o), b = datasets::majority_task(o);
  EXPECT_EQ(a.train.images.to_vector<std::int64_t>(), b.train.images.to_vector<std::int64_t>());
  EXPECT_EQ(a.test.labels.to_vector<std::int64_t>(), b.test.labels.to_vector<std::int64_t>());
  EXPECT_EQ(a.train.images.shape(), (Shape{300, 33}));
  EXPECT_EQ(a.num_classes, 8);
  EXPECT_EQ(a.vocab_size, 32);
  const std::vector<std::int64_t> ids = a.train.images.to_vector<std::int64_t>(), labels = a.train.labels.to_vector<std::int64_t>();
  std::vector<int> per_class(8);
  for (std::int64_t s = 0; s < 300; ++s) {
    const std::int64_t* row = ids.data() + s * 33;
    ASSERT_EQ(row[0], datasets::kClsId);
    std::vector<int> counts(8);
    std::int64_t length = 0;
    for (std::int64_t t = 1; t < 33; ++t) {
      if (row[t] == datasets::kPadId) continue;
      ASSERT_EQ(length, t - 1) << "padding only at the end";
      ++length;
      ASSERT_GE(row[t], 2);
      ASSERT_LT(row[t], 32);
      if (row[t] < 10) ++counts[row[t] - 2];
    }
    ASSERT_GE(length, 8);
    const int top = *std::max_element(counts.begin(), counts.end());
    EXPECT_EQ(std::count(counts.begin(), counts.end(), top), 1);
    EXPECT_EQ(counts[labels[s]], top);
    ++per_class[labels[s]];
  }
  for (int c = 0; c < 8; ++c) EXPECT_GT(per_class[c], 15) << "class " << c;  // about 300 / 8 each
}

TEST(BertTiny, PaddingChangesNothingAndIdsAreChecked) {
  auto model = build({{"model", "bert-tiny"}, {"vocab", 32}, {"tokens", 12}, {"classes", 3}}, 4);
  model->eval();
  EXPECT_TRUE(model->has_parameter("embeddings.word_embeddings.weight"));
  EXPECT_TRUE(model->has_parameter("encoder.layers.1.self_attn.k_proj.weight"));
  EXPECT_FALSE(model->has_parameter("encoder.norm.weight"));  // post-LN: no final norm
  // One sequence of 5 tokens, alone at length 5 and padded to 12 in a batch with a full one.
  const std::vector<std::int64_t> seq = {1, 7, 3, 30, 12};
  std::vector<std::int64_t> batch(24, 0);
  std::copy(seq.begin(), seq.end(), batch.begin());
  for (int t = 0; t < 12; ++t) batch[12 + t] = 2 + t;
  const Tensor alone = (*model)(Tensor::from_vector(seq, {1, 5}));
  const Tensor padded = (*model)(Tensor::from_vector(batch, {2, 12}));
  EXPECT_TRUE(all_close("padded vs alone", slice(padded, 0, 0, 1), alone, 1e-5, 1e-5));
  // An explicit mask that also hides the padding gives the same; one that does not, differs.
  std::vector<std::int64_t> mask(24, 1);
  for (int t = 5; t < 12; ++t) mask[t] = 0;
  EXPECT_TRUE(all_close("explicit mask", (*model)(Tensor::from_vector(batch, {2, 12}), {Tensor::from_vector(mask, {2, 12})}),
                        padded, 1e-6, 1e-6));
  const Tensor unmasked = (*model)(Tensor::from_vector(batch, {2, 12}), {Tensor::ones({2, 12})});
  EXPECT_FALSE(all_close("", slice(unmasked, 0, 0, 1), alone, 1e-4, 1e-4));
  // Bad input: an id beyond the vocabulary, too many tokens, a mask of the wrong shape.
  const std::string id_error = error_of([&] { (*model)(Tensor::from_vector<std::int64_t>({1, 32}, {1, 2})); });
  EXPECT_NE(id_error.find("vocabulary of 32"), std::string::npos) << id_error;
  EXPECT_NE(error_of([&] { (*model)(Tensor::zeros({1, 13}, DType::Int64)); }).find("13 tokens"), std::string::npos);
  const std::string mask_error =
      error_of([&] { (*model)(Tensor::from_vector(batch, {2, 12}), {Tensor::ones({2, 11})}); });
  EXPECT_NE(mask_error.find("attention mask (2, 11)"), std::string::npos) << mask_error;
  EXPECT_NE(error_of([&] { (*model)(Tensor::zeros({1, 5})); }).find("int64 token ids"), std::string::npos);
}

TEST(BertTiny, CountsFlopsOnTokenIdsAndReloads) {
  const nlohmann::json spec = {{"model", "bert-tiny"}, {"vocab", 32}, {"tokens", 33}, {"classes", 8}};
  auto model = build(spec, 2);
  const std::int64_t d = 128, f = 512, t = 33;
  const std::int64_t layer = 4 * t * (2 * d * d + d) + 2 * (2 * t * t * d) + t * (2 * d * f + f) + t * (2 * f * d + d);
  EXPECT_EQ(flops_per_sample(*model, {33}), 2 * layer + (2 * d * d + d) + (2 * d * 8 + 8));
  model->eval();
  const Tensor ids = datasets::majority_task({8, 1, 8, 32, 1}).train.images;
  const Tensor before = (*model)(ids);
  const std::string path = ::testing::TempDir() + "bert.safetensors";
  save_checkpoint(path, *model);
  Generator other(3);
  auto loaded = load_checkpoint(path, other).model;
  loaded->eval();
  EXPECT_EQ((*loaded)(ids).to_vector<float>(), before.to_vector<float>());
}

// The transformer builders count their parameters without building (what keeps a crafted spec
// from allocating a model of 2^40 values): the count equals what the built model holds, and a
// spec past the limit is refused by name before anything is allocated.
TEST(TransformerSpecs, ParameterCountMatchesTheBuiltModelAndHugeSpecsAreRefused) {
  for (const std::string text : {"vit-tiny", "vit-tiny:depth=2,dim=24,heads=3,mlp=40,patch=4",
                                 "vit-tiny:input_size=32,in_channels=3,classes=7,patch=8", "bert-tiny",
                                 "bert-tiny:vocab=50,tokens=9,classes=3,dim=16,heads=4,depth=3,mlp=20"}) {
    const nlohmann::json spec = parse_model_text(text);
    Generator gen(0);
    FillsOff no_fills(gen);
    const auto model = build_from_spec(spec, gen);
    std::int64_t held = 0;
    for (const auto& [name, t] : model->state_dict()) held += t.numel();
    EXPECT_EQ(spec_parameter_count(spec), held) << text;
  }
  for (const std::string text : {"vit-tiny:dim=65536,depth=1024", "bert-tiny:vocab=16777216,dim=65536,heads=1"}) {
    const std::string e = error_of([&] {
      Generator gen(0);
      build_model(text, gen);
    });
    EXPECT_NE(e.find("(the limit)"), std::string::npos) << text << ": " << e;
  }
}
