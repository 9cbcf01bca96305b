// core/safetensors and nn/checkpoint: bit-exact round trips, the on-disk layout the
// HuggingFace spec requires, corrupt files rejected with the file's name, atomic writes,
// and checkpoints that alone rebuild a model computing the same outputs.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "core/shrink.h"
#include "nn/checkpoint.h"
#include "nn/linear.h"
#include "nn/models.h"
#include "nn/sparse_linear.h"

using namespace shrink;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("shrink_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> listing() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file assembled by hand from a header text and data bytes.
std::string assemble(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

std::string raw(const Tensor& t) {
  return std::string(static_cast<const char*>(t.raw_data()), t.nbytes());
}

}  // namespace

// ---- safetensors ----

TEST(Safetensors, RoundTripIsBitIdentical) {
  TempDir dir;
  const float nan_payload = [] {
    std::uint32_t bits = 0x7fc01234u;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }();
  const std::vector<std::pair<std::string, Tensor>> tensors{
      {"weights.f32", Tensor::from_vector<float>(
                          {1.5f, -0.0f, std::numeric_limits<float>::denorm_min(),
                           std::numeric_limits<float>::infinity(), nan_payload, 3.14159f},
                          {2, 3})},
      {"f64", Tensor::from_vector<double>({1e-300, -2.5, 1.0 / 3.0}, {3, 1})},
      {"i64", Tensor::from_vector<std::int64_t>({-1, std::numeric_limits<std::int64_t>::max()}, {2})},
      {"scalar", Tensor::scalar(7.0)},
      {"empty", Tensor::zeros({0, 4})},
  };
  const std::string path = dir.file("t.safetensors");
  save_safetensors(path, tensors, {{"note", "héllo ✓"}, {"epoch", "3"}});
  const auto loaded = load_safetensors(path);
  EXPECT_EQ(loaded.metadata, (std::map<std::string, std::string>{{"note", "héllo ✓"}, {"epoch", "3"}}));
  ASSERT_EQ(loaded.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const Tensor& got = loaded.tensors.at(name);
    EXPECT_EQ(got.shape(), t.shape()) << name;
    EXPECT_EQ(got.dtype(), t.dtype()) << name;
    EXPECT_EQ(raw(got), raw(t)) << name;
  }
  // Saving what was loaded gives the same file, byte for byte.
  std::vector<std::pair<std::string, Tensor>> again;
  for (const auto& [name, t] : tensors) again.emplace_back(name, loaded.tensors.at(name));
  save_safetensors(dir.file("u.safetensors"), again, loaded.metadata);
  EXPECT_EQ(read_bytes(dir.file("u.safetensors")), read_bytes(path));
}

TEST(Safetensors, LayoutFollowsTheSpec) {
  TempDir dir;
  const std::string path = dir.file("t.safetensors");
  const Tensor a = Tensor::from_vector<float>({1, 2, 3}, {3});
  const Tensor b = Tensor::from_vector<std::int64_t>({4, 5}, {1, 2});
  save_safetensors(path, {{"a", a}, {"b", b}}, {{"k", "v"}});
  const std::string bytes = read_bytes(path);
  ASSERT_GE(bytes.size(), 8u);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);  // little-endian
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 12 + 16);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  const auto last = header.find_last_not_of(' ');
  EXPECT_EQ(header[last], '}');  // only spaces pad it
  const auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["__metadata__"], (nlohmann::json{{"k", "v"}}));
  EXPECT_EQ(j["a"], (nlohmann::json{{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {0, 12}}}));
  EXPECT_EQ(j["b"], (nlohmann::json{{"dtype", "I64"}, {"shape", {1, 2}}, {"data_offsets", {12, 28}}}));
  EXPECT_EQ(bytes.substr(8 + n), raw(a) + raw(b));
}

TEST(Safetensors, ReadsAHandWrittenFile) {
  // What another implementation could write: no metadata, unpadded header, reversed order.
  TempDir dir;
  const std::string path = dir.file("hand.safetensors");
  const double d = -1.25;
  const float f[2] = {0.5f, 8.0f};
  std::string data(reinterpret_cast<const char*>(&d), 8);
  data += std::string(reinterpret_cast<const char*>(f), 8);
  write_bytes(path, assemble(R"({"y":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                             R"("x":{"dtype":"F64","shape":[],"data_offsets":[0,8]}})",
                             data));
  const auto loaded = load_safetensors(path);
  EXPECT_TRUE(loaded.metadata.empty());
  EXPECT_EQ(loaded.tensors.at("x").item(), -1.25);
  EXPECT_EQ(loaded.tensors.at("y").to_vector<float>(), (std::vector<float>{0.5f, 8.0f}));
}

TEST(Safetensors, CorruptFilesThrowNamingTheFile) {
  TempDir dir;
  const std::string f32x2(8, '\0');  // two float zeros
  const auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return R"({"t":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}}";
  };
  std::string too_long(8, '\0');
  const std::uint64_t huge = 1ull << 40;
  std::memcpy(too_long.data(), &huge, 8);
  const std::vector<std::pair<std::string, std::string>> cases{
      {"empty file", ""},
      {"truncated length", std::string("\x10\0\0", 3)},
      {"header length beyond file", too_long + "{}"},
      {"bad json", assemble("{\"t\": [1, 2", "")},
      {"not an object", assemble("[1, 2]", "")},
      {"unknown dtype", assemble(entry("C64", "[2]", "[0,16]"), std::string(16, '\0'))},
      {"offsets past end", assemble(entry("F32", "[2]", "[0,16]"), f32x2)},
      {"offsets reversed", assemble(entry("F32", "[2]", "[8,0]"), f32x2)},
      {"offsets vs shape", assemble(entry("F32", "[3]", "[0,8]"), f32x2)},
      {"negative dim", assemble(entry("F32", "[-2]", "[0,8]"), f32x2)},
      {"float offset", assemble(entry("F32", "[2]", "[0,8.0]"), f32x2)},
      {"missing field", assemble(R"({"t":{"dtype":"F32","shape":[2]}})", f32x2)},
      {"overflowing shape",
       assemble(entry("F64", "[4294967296,4294967296,4294967296]", "[0,8]"), f32x2)},
      {"overlap", assemble(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           f32x2)},
      {"gap", assemble(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f32x2)},
      {"trailing bytes", assemble(entry("F32", "[1]", "[0,4]"), f32x2)},
      {"metadata not strings", assemble(R"({"__metadata__":{"epoch":3}})", "")},
  };
  for (const auto& [what, bytes] : cases) {
    const std::string path = dir.file("bad.safetensors");
    write_bytes(path, bytes);
    try {
      load_safetensors(path);
      ADD_FAILURE() << what << ": accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << what << ": " << e.what();
    }
  }
  EXPECT_THROW(load_safetensors(dir.file("missing.safetensors")), Error);
  EXPECT_THROW(load_safetensors(dir.file("")), Error);  // a directory
}

TEST(Safetensors, TruncatedAndMutatedFilesNeverCrash) {
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  Generator gen(3);
  save_safetensors(good, {{"w", Tensor::randn({5, 7}, gen)}, {"b", Tensor::zeros({7})}}, {{"k", "v"}});
  const std::string bytes = read_bytes(good);
  const std::string path = dir.file("bad.safetensors");
  // Every truncation is refused, with the file named.
  for (std::size_t len = 0; len < bytes.size(); len += (len < 200 ? 1 : 17)) {
    write_bytes(path, bytes.substr(0, len));
    try {
      load_safetensors(path);
      ADD_FAILURE() << "accepted a file truncated to " << len << " bytes";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  // Single-byte mutations of the header either load or throw shrink::Error.
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  for (std::size_t i = 0; i < 8 + n; ++i) {
    std::string mutated = bytes;
    mutated[i] = static_cast<char>(gen.next_below(256));
    write_bytes(path, mutated);
    try {
      load_safetensors(path);
    } catch (const Error&) {
    }
  }
}

TEST(Safetensors, WriteIsAtomicAndLeavesNoTemporaryFile) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  save_safetensors(path, {{"a", Tensor::ones({4})}});
  save_safetensors(path, {{"a", Tensor::zeros({2})}});  // replaces the old file
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(load_safetensors(path).tensors.at("a").shape(), (Shape{2}));
  // A failing write (no such directory) throws, names the file, and leaves nothing.
  const std::string bad = dir.file("no/such/dir/model.safetensors");
  try {
    save_safetensors(bad, {{"a", Tensor::ones({4})}});
    ADD_FAILURE() << "wrote into a missing directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  // Invalid names are refused before anything is written.
  EXPECT_THROW(save_safetensors(path, {{"__metadata__", Tensor::ones({1})}}), Error);
  EXPECT_THROW(save_safetensors(path, {{"a", Tensor::ones({1})}, {"a", Tensor::ones({1})}}), Error);
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(load_safetensors(path).tensors.at("a").shape(), (Shape{2}));  // untouched
}

// A write that fails part-way (the file size limit stands in for a full disk: write()
// returns EFBIG as it would ENOSPC) leaves the previous file intact, says so, and leaves no
// temporary file.
TEST(Safetensors, FailedWriteKeepsThePreviousFileAndSaysSo) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  save_safetensors(path, {{"a", Tensor::ones({4})}});
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    save_safetensors(path, {{"a", Tensor::zeros({1 << 20})}});  // 4 MiB: past the limit
  } catch (const Error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(message.find("write failed"), std::string::npos) << message;
  EXPECT_NE(message.find("the previous file is unchanged"), std::string::npos) << message;
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(load_safetensors(path).tensors.at("a").shape(), (Shape{4}));
}

// ---- checkpoints ----

namespace {

void expect_same_function(nn::Module& a, nn::Module& b, const Shape& input, Generator& gen) {
  NoGradGuard no_grad;
  a.eval();
  b.eval();
  const Tensor x = Tensor::randn(input, gen);
  EXPECT_EQ(raw(a(x)), raw(b(x)));
}

}  // namespace

TEST(Checkpoint, SaveLoadForwardIsIdentical) {
  TempDir dir;
  for (const char* spec : {"lenet-300-100", "mlp:13-7-5-3:tanh", "mlp:3-1"}) {
    SCOPED_TRACE(spec);
    Generator gen(42);
    auto model = nn::build_model(spec, gen);
    const std::string path = dir.file("model.safetensors");
    nn::save_checkpoint(path, *model, {{"epoch", "12"}});
    Generator other(7);
    nn::Checkpoint ckpt = nn::load_checkpoint(path, other);
    EXPECT_EQ(ckpt.metadata.at("epoch"), "12");
    EXPECT_EQ(ckpt.metadata.at("format"), "shrink/2");
    EXPECT_EQ(nlohmann::json::parse(ckpt.metadata.at("model")), nn::model_spec(*model));
    EXPECT_EQ(ckpt.spec, nn::model_spec(*model));
    EXPECT_EQ(nn::model_spec(*ckpt.model), ckpt.spec);
    for (auto& [name, t] : model->state_dict())
      EXPECT_EQ(raw(ckpt.model->state_dict().at(name)), raw(t)) << name;
    const Shape input = nn::input_shape(ckpt.spec);
    Shape batch{4};
    batch.insert(batch.end(), input.begin(), input.end());
    expect_same_function(*model, *ckpt.model, batch, gen);
  }
}

TEST(Checkpoint, PrunedModelReloadsAtItsPrunedWidths) {
  TempDir dir;
  Generator gen(1);
  auto model = nn::build_model("lenet-300-100", gen);
  std::vector<std::int64_t> keep;
  for (std::int64_t i = 0; i < 300; i += 3) keep.push_back(i);  // 100 of 300 units
  const Tensor kept = Tensor::from_vector(keep, {static_cast<std::int64_t>(keep.size())});
  model->set_parameter("1.weight", index_select(model->parameter("1.weight"), 0, kept));
  model->set_parameter("1.bias", index_select(model->parameter("1.bias"), 0, kept));
  model->set_parameter("3.weight", index_select(model->parameter("3.weight"), 1, kept));
  const std::string path = dir.file("pruned.safetensors");
  nn::save_checkpoint(path, *model);
  nn::Checkpoint ckpt = nn::load_checkpoint(path, gen);
  EXPECT_EQ(ckpt.spec, (nlohmann::json{{"model", "lenet-300-100"}}));
  EXPECT_EQ(nn::layer_widths(*ckpt.model), (std::vector<std::int64_t>{784, 100, 100, 10}));
  EXPECT_EQ(ckpt.model->num_parameters(), model->num_parameters());
  expect_same_function(*model, *ckpt.model, {3, 1, 28, 28}, gen);

  // Loading draws from the caller's generator what initialising the saved widths draws, as
  // shrink/1 did, so seeded sampling after a load does not depend on the unpruned widths.
  Generator loading(5), building(5);
  nn::load_checkpoint(path, loading);
  nn::build_mlp({784, 100, 100, 10}, "relu", true, building);
  EXPECT_EQ(loading.offset(), building.offset());
  EXPECT_GT(loading.offset(), 0u);
}

// Files written before specs ("shrink/1": an mlp architecture under "architecture") load,
// pruned widths and CSR layers included.
TEST(Checkpoint, Version1FilesStillLoad) {
  TempDir dir;
  Generator gen(4);
  auto model = nn::build_model("mlp:12-9-7-3:tanh", gen);
  const Tensor kept = Tensor::from_vector<std::int64_t>({0, 2, 4, 6, 8}, {5});
  model->set_parameter("1.weight", index_select(model->parameter("1.weight"), 0, kept));
  model->set_parameter("1.bias", index_select(model->parameter("1.bias"), 0, kept));
  model->set_parameter("3.weight", index_select(model->parameter("3.weight"), 1, kept));
  model->set_child("5", nn::SparseLinear::from_dense(dynamic_cast<const nn::Linear&>(*model->child("5")), 0.2));
  const std::int64_t nnz = dynamic_cast<const nn::SparseLinear&>(*model->child("5")).nnz();
  const nlohmann::json v1 = {{"family", "mlp"}, {"widths", {12, 5, 7, 3}}, {"activation", "tanh"},
                             {"bias", true}, {"nnz", {nullptr, nullptr, nnz}}};
  nn::NamedTensors tensors = model->named_parameters();
  for (auto& entry : model->named_buffers()) tensors.push_back(entry);
  const std::string path = dir.file("v1.safetensors");
  save_safetensors(path, tensors, {{"format", "shrink/1"}, {"architecture", v1.dump()}});
  nn::Checkpoint ckpt = nn::load_checkpoint(path, gen);
  EXPECT_EQ(ckpt.spec["model"], "mlp");
  EXPECT_EQ(ckpt.spec["spec"], "12-5-7-3:tanh");
  EXPECT_EQ(ckpt.spec["sparse"]["5"]["nnz"], nnz);
  EXPECT_EQ(ckpt.model->child("5")->type_name(), "SparseLinear");
  EXPECT_EQ(nn::layer_widths(*ckpt.model), (std::vector<std::int64_t>{12, 5, 7, 3}));
  expect_same_function(*model, *ckpt.model, {4, 12}, gen);
  // Re-saved, it is a shrink/2 file with the same spec.
  nn::save_checkpoint(path, *ckpt.model);
  EXPECT_EQ(nn::load_checkpoint(path, gen).metadata.at("format"), "shrink/2");
  EXPECT_THROW(nn::spec_from_v1_architecture({{"family", "vgg"}}), Error);
  EXPECT_THROW(nn::spec_from_v1_architecture({{"family", "mlp"}, {"widths", "x"}}), Error);
}

TEST(Checkpoint, DropoutModelRoundTrips) {
  TempDir dir;
  Generator gen(2);
  const nlohmann::json spec = {{"model", "lenet-300-100"}, {"dropout", 0.3}};
  auto model = nn::build_from_spec(spec, gen);
  const std::string path = dir.file("dropout.safetensors");
  nn::save_checkpoint(path, *model);
  nn::Checkpoint ckpt = nn::load_checkpoint(path, gen);
  EXPECT_EQ(ckpt.spec, spec);
  EXPECT_EQ(ckpt.model->child("3")->type_name(), "Dropout");
  expect_same_function(*model, *ckpt.model, {2, 784}, gen);
}

TEST(Checkpoint, RejectsFilesThatAreNotCheckpoints) {
  TempDir dir;
  Generator gen(1);
  const std::string path = dir.file("plain.safetensors");
  save_safetensors(path, {{"1.weight", Tensor::ones({2, 2})}});
  try {
    nn::load_checkpoint(path, gen);
    ADD_FAILURE() << "loaded a file without format metadata";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  // A spec and weights that disagree: the comparison of the saved shapes with the spec
  // (before anything is built) names the missing tensor and the file.
  auto model = nn::build_model("mlp:4-3-2", gen);
  nn::NamedTensors tensors = model->named_parameters();
  save_safetensors(path, tensors, {{"format", "shrink/2"}, {"model", R"({"model":"mlp","spec":"4-3-3-2"})"}});
  try {
    nn::load_checkpoint(path, gen);
    ADD_FAILURE() << "loaded weights that do not fit the spec";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("no tensor '5.weight'"), std::string::npos) << msg;
  }
  // Saved shapes that do not chain (a pruned layer whose consumer was not) fail before the
  // build, naming the file, the tensor and its shape.
  tensors[0].second = Tensor::zeros({2, 4});
  tensors[1].second = Tensor::zeros({2});
  save_safetensors(path, tensors, {{"format", "shrink/2"}, {"model", R"({"model":"mlp","spec":"4-3-2"})"}});
  try {
    nn::load_checkpoint(path, gen);
    ADD_FAILURE() << "loaded layers whose shapes do not chain";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("tensor '3.weight' has shape (2, 3) but the layer before it gives 2"),
              std::string::npos) << msg;
  }
  // A spec that is not JSON, or names no builder.
  save_safetensors(path, tensors, {{"format", "shrink/2"}, {"model", "{oops"}});
  EXPECT_THROW(nn::load_checkpoint(path, gen), Error);
  save_safetensors(path, tensors, {{"format", "shrink/2"}, {"model", R"({"model":"vgg"})"}});
  EXPECT_THROW(nn::load_checkpoint(path, gen), Error);
  EXPECT_THROW(nn::save_checkpoint(path, *model, {{"format", "x"}}), Error);
  EXPECT_THROW(nn::save_checkpoint(path, *model, {{"model", "x"}}), Error);
}
