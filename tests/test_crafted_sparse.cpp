// Crafted input to unstructured pruning (issue 8): a sparse checkpoint whose CSR row_ptr or
// col_idx bytes were edited, and a one-shot --reference of other widths. Each must end in
// a shrink::Error naming the file, the layer or tensor and what is wrong — through the
// library and through the shrink-sparsify binary — and never read out of bounds.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/random.h"
#include "nn/checkpoint.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/sparse_linear.h"
#include "prune/sap.h"
#include "test_helpers.h"
#include "tests/tool_runner.h"

using namespace shrink;
using shrink::testing::error_of;
namespace fs = std::filesystem;

namespace {

Tensor index_tensor(const std::vector<std::int64_t>& v) {
  return Tensor::from_vector(v, {static_cast<std::int64_t>(v.size())});
}

// mlp 13-9-7-5 with layers "1" and "5" sparse (about half the entries kept).
std::shared_ptr<nn::Sequential> sparse_mlp(std::uint64_t seed, std::vector<std::int64_t> widths = {13, 9, 7, 5}) {
  Generator gen(seed);
  auto model = nn::build_mlp(widths, "relu", true, gen);
  for (const char* name : {"1", "5"}) {
    const auto& dense = dynamic_cast<const nn::Linear&>(*model->child(name));
    model->set_child(name, nn::SparseLinear::from_dense(dense, 0.15));
  }
  return model;
}

nn::StateDict snapshot(const nn::Module& model) {
  nn::StateDict out;
  for (auto& [k, v] : model.state_dict()) out[k] = v.detach().clone();
  return out;
}

// Overwrites int64 element `index` of tensor `name` in a safetensors file, in place.
void poke_int64(const fs::path& file, const std::string& name, std::int64_t index, std::int64_t value) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << file;
  std::uint64_t header_size = 0;
  f.read(reinterpret_cast<char*>(&header_size), 8);
  std::string header(header_size, '\0');
  f.read(header.data(), static_cast<std::streamsize>(header_size));
  const auto entry = nlohmann::json::parse(header).at(name);
  ASSERT_EQ(entry.at("dtype"), "I64");
  const auto begin = entry.at("data_offsets")[0].get<std::int64_t>();
  ASSERT_LT(index, entry.at("shape")[0].get<std::int64_t>());
  f.seekp(static_cast<std::streamoff>(8 + header_size + begin + 8 * index));
  f.write(reinterpret_cast<const char*>(&value), 8);
  ASSERT_TRUE(f.good());
}

using Result = shrink::testing::ToolResult;
inline Result run(const std::string& args) { return shrink::testing::run_tool(args); }

bool prints_an_address(const std::string& message) {
  return std::regex_search(message, std::regex("0x[0-9a-fA-F]{6,}|[0-9]{12,}"));
}

class CraftedSparse : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("shrink-crafted-sparse-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// row_ptr (out + 1) and col_idx (nnz) edits, each breaking one CSR invariant.
struct Edit {
  const char* tensor;
  std::int64_t index;  // < 0: from the end
  std::int64_t value;
  const char* says;    // what the message must name
};
const std::vector<Edit> kEdits{
    {"row_ptr", 1, 1'000'000, "row_ptr"},    // runs past nnz, then decreases
    {"row_ptr", 2, -5, "row_ptr"},           // negative
    {"row_ptr", 0, 3, "row_ptr"},            // does not start at 0
    {"row_ptr", -1, 2, "row_ptr"},           // does not end at nnz
    {"col_idx", 0, 13, "col_idx"},           // == in_features
    {"col_idx", 1, -1'000'000'000, "col_idx"},
};

}  // namespace

TEST(CraftedSparseLayer, ConstructorChecksRowPtrBeforeReadingColumns) {
  // row 0 claims 1000 entries of a 2-entry col_idx: the check must stop at row_ptr, not
  // read (and print) whatever lies past col_idx.
  const std::string msg = error_of([] {
    nn::SparseLinear(4, index_tensor({0, 1000, 2}), index_tensor({0, 1}), Tensor::ones({2}));
  });
  EXPECT_NE(msg.find("row_ptr"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("col_idx["), std::string::npos) << msg;
  EXPECT_FALSE(prints_an_address(msg)) << msg;
}

TEST(CraftedSparseLayer, LoadStateDictChecksTheCsrStructure) {
  const auto good = snapshot(*sparse_mlp(1));
  const std::int64_t nnz = good.at("1.col_idx").numel();
  for (const Edit& edit : kEdits) {
    nn::StateDict state = snapshot(*sparse_mlp(1));
    Tensor t = state.at(std::string("1.") + edit.tensor);
    const std::int64_t index = edit.index < 0 ? t.numel() + edit.index : edit.index;
    auto v = t.to_vector<std::int64_t>();
    v[static_cast<std::size_t>(index)] = edit.value;
    state[std::string("1.") + edit.tensor] = index_tensor(v);
    auto model = sparse_mlp(2);
    const std::string msg = error_of(
        [&] { model->load_state_dict(state, true, nn::Module::ShapeMismatch::Adopt); });
    EXPECT_NE(msg.find("layer '1'"), std::string::npos) << edit.tensor << "[" << index << "]: " << msg;
    EXPECT_NE(msg.find(edit.says), std::string::npos) << msg;
    EXPECT_FALSE(prints_an_address(msg)) << msg;
  }
  // Adopted shapes are checked too: a col_idx of another length than values.
  nn::StateDict state = snapshot(*sparse_mlp(1));
  state["1.col_idx"] = index_tensor(std::vector<std::int64_t>(static_cast<std::size_t>(nnz + 3), 0));
  auto model = sparse_mlp(2);
  const std::string msg = error_of(
      [&] { model->load_state_dict(state, true, nn::Module::ShapeMismatch::Adopt); });
  EXPECT_NE(msg.find("layer '1'"), std::string::npos) << msg;
  // An unedited state dict still loads.
  auto fresh = sparse_mlp(3);
  EXPECT_NO_THROW(fresh->load_state_dict(good, true, nn::Module::ShapeMismatch::Adopt));
}

TEST_F(CraftedSparse, CheckpointWithEditedCsrNamesFileAndLayer) {
  const fs::path good = dir_ / "sparse.safetensors";
  const auto model = sparse_mlp(4);
  nn::save_checkpoint(good.string(), *model);
  const auto& layer = dynamic_cast<const nn::SparseLinear&>(*model->child("1"));
  for (const Edit& edit : kEdits) {
    const fs::path bad = dir_ / "edited.safetensors";
    fs::copy_file(good, bad, fs::copy_options::overwrite_existing);
    std::int64_t index = edit.index;
    if (index < 0)
      index += std::string(edit.tensor) == "row_ptr" ? layer.out_features() + 1 : layer.nnz();
    poke_int64(bad, std::string("1.") + edit.tensor, index, edit.value);

    Generator gen(0);
    const std::string msg = error_of([&] { nn::load_checkpoint(bad.string(), gen); });
    EXPECT_NE(msg.find(bad.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("layer '1'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(edit.says), std::string::npos) << msg;
    EXPECT_FALSE(prints_an_address(msg)) << msg;

    const Result r = run("shrink-sparsify " + bad.string() + " --method lottery --out " +
                         (dir_ / "out.safetensors").string());
    EXPECT_GE(r.exit_code, 1) << r.output;
    EXPECT_LE(r.exit_code, 127) << r.output;
    EXPECT_NE(r.output.find(bad.string()), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("layer '1'"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir_ / "out.safetensors"));
  }
}

TEST(CraftedReference, OneShotRejectsAReferenceOfOtherWidths) {
  Generator gen(5);
  auto dense = nn::build_mlp({13, 9, 7, 5}, "relu", true, gen);
  const nn::StateDict init = snapshot(*dense);
  const nn::StateDict wider = snapshot(*nn::build_mlp({13, 40, 7, 5}, "relu", true, gen));
  const nn::StateDict narrower = snapshot(*nn::build_mlp({13, 3, 7, 5}, "relu", true, gen));
  for (const nn::StateDict* ref : {&wider, &narrower}) {
    auto model = nn::build_mlp({13, 9, 7, 5}, "relu", true, gen);
    const std::string msg = error_of([&] {
      prune::one_shot_mask_round(*model, init, *ref, prune::Scope::Layer, 0.2, "ref.safetensors");
    });
    EXPECT_NE(msg.find("ref.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'1.weight'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(9, 13)"), std::string::npos) << msg;  // the model's
    EXPECT_NE(msg.find(ref == &wider ? "(40, 13)" : "(3, 13)"), std::string::npos) << msg;
    EXPECT_EQ(model->child("1")->type_name(), "Linear");  // nothing pruned
  }
  // A later round (the model is sparse now) checks the reference the same way.
  auto sparse = sparse_mlp(6);
  const std::string msg = error_of([&] {
    prune::one_shot_mask_round(*sparse, init, wider, prune::Scope::Global, 0.2, "ref.safetensors");
  });
  EXPECT_NE(msg.find("'1.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(40, 13)"), std::string::npos) << msg;
}

TEST(CraftedReference, OneShotRejectsAReferenceOfOtherLayerKinds) {
  Generator gen(7);
  auto model = nn::build_mlp({13, 9, 7, 5}, "relu", true, gen);
  const nn::StateDict init = snapshot(*model);
  // A sparse reference: "1.values"/"1.row_ptr"/"1.col_idx" where the model has a dense weight.
  const std::string msg = error_of([&] {
    prune::one_shot_mask_round(*model, init, snapshot(*sparse_mlp(8)), prune::Scope::Layer, 0.2,
                               "ref.safetensors");
  });
  EXPECT_NE(msg.find("ref.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'1.weight'"), std::string::npos) << msg;
  // A reference without biases where the model has them.
  nn::StateDict no_bias = snapshot(*nn::build_mlp({13, 9, 7, 5}, "relu", false, gen));
  const std::string msg2 = error_of([&] {
    prune::one_shot_mask_round(*model, init, no_bias, prune::Scope::Layer, 0.2, "ref.safetensors");
  });
  EXPECT_NE(msg2.find("'1.bias'"), std::string::npos) << msg2;
  // The matching dense reference works, for the dense model and its sparse successor.
  const nn::StateDict reference = snapshot(*nn::build_mlp({13, 9, 7, 5}, "relu", true, gen));
  EXPECT_NO_THROW(prune::one_shot_mask_round(*model, init, reference, prune::Scope::Layer, 0.2));
  EXPECT_NO_THROW(prune::one_shot_mask_round(*model, init, reference, prune::Scope::Layer, 0.2));
  EXPECT_EQ(model->child("1")->type_name(), "SparseLinear");
}

TEST_F(CraftedSparse, SparsifyOneShotRejectsAReferenceOfOtherWidths) {
  Generator gen(9);
  const std::string model = (dir_ / "model.safetensors").string();
  const std::string other = (dir_ / "other.safetensors").string();
  const std::string out = (dir_ / "out.safetensors").string();
  nn::save_checkpoint(model, *nn::build_mlp({13, 9, 7, 5}, "relu", true, gen));
  nn::save_checkpoint(other, *nn::build_mlp({13, 200, 7, 5}, "relu", true, gen));
  const Result r = run("shrink-sparsify " + model + " --method one-shot --reference " + other +
                       " --out " + out);
  EXPECT_GE(r.exit_code, 1) << r.output;
  EXPECT_LE(r.exit_code, 127) << r.output;
  EXPECT_NE(r.output.find(other), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("'1.weight'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(200, 13)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(9, 13)"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  // Its own reference is fine.
  const Result ok = run("shrink-sparsify " + model + " --method one-shot --reference " + model +
                        " --out " + out);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}
