// Every binary, given a malformed file in place of a checkpoint or of a data set file, exits
// with a status in 1..127 and a message naming the file — never a signal, a hang or a
// success on a broken file. The variants are structural breaks of a real checkpoint and a
// real IDX data set (empty, cut short at many points, oversized or garbled headers, random
// bytes, a file of the other kind, a directory, non-finite weights), plus seeded one-byte
// edits of the checkpoint header, which may still parse: those must only never crash.
//
// With SHRINK_RELIABILITY_OUT=DIR set, each test's summary goes to DIR/malformed_files.<test>.json
// (scripts/reliability_report.py reads it for docs/reliability.md).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "tests/tool_fixture.h"

namespace {

namespace fs = std::filesystem;
using shrink::testing::Result;
using shrink::testing::ToolsTest;

constexpr int kHangGuardSeconds = 600;  // a hang is a failure; the guard turns it into a signal

struct Variant {
  std::string name;
  std::string bytes;
  bool broken;  // must be refused; otherwise only required not to crash
};

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

std::string random_bytes(std::size_t n, shrink::Generator& gen) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen.next_below(256));
  return s;
}

std::vector<Variant> checkpoint_variants(const std::string& good, const std::string& idx_bytes,
                                         const std::string& nan_ckpt, const std::string& foreign) {
  shrink::Generator gen(2026);
  std::uint64_t header = 0;
  std::memcpy(&header, good.data(), 8);
  std::vector<Variant> v = {
      {"empty", "", true},
      {"seven-bytes", good.substr(0, 7), true},
      {"header-claims-2^60-bytes", le64(1ull << 60) + good.substr(8), true},
      {"header-runs-past-the-end", le64(good.size()) + good.substr(8), true},
      {"header-not-json", le64(header) + std::string(header, 'x') + good.substr(8 + header), true},
      {"header-a-json-array", le64(header) + "[" + std::string(header - 2, ' ') + "]" + good.substr(8 + header), true},
      {"random-bytes", random_bytes(4096, gen), true},
      {"an-idx-file", idx_bytes, true},
      {"nan-weights", nan_ckpt, true},
      {"safetensors-without-shrink-metadata", foreign, true},
  };
  for (double f : {0.02, 0.1, 0.5, 0.9})
    v.push_back({"cut-at-" + std::to_string(static_cast<int>(f * 100)) + "%",
                 good.substr(0, static_cast<std::size_t>(good.size() * f)), true});
  v.push_back({"cut-one-byte-short", good.substr(0, good.size() - 1), true});
  v.push_back({"one-byte-too-long", good + "x", true});
  for (int i = 0; i < 24; ++i) {  // one byte of the header replaced by a random one
    std::string edited = good;
    const std::size_t at = 8 + gen.next_below(header);
    edited[at] = static_cast<char>(gen.next_below(256));
    v.push_back({"header-byte-" + std::to_string(at) + "-edited", edited, false});
  }
  return v;
}

class MalformedFiles : public ToolsTest {
 protected:
  void TearDown() override {
    if (const char* out = std::getenv("SHRINK_RELIABILITY_OUT")) {
      fs::create_directories(out);
      const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
      std::ofstream(fs::path(out) / ("malformed_files." + test + ".json")) << summary_.dump(2) << "\n";
    }
    ToolsTest::TearDown();
  }

  // Runs `command` (which reads `file`), checks the outcome and tallies it for the summary.
  void check(const std::string& binary, const std::string& command, const Variant& v, const std::string& file) {
    SCOPED_TRACE(v.name + ": " + command);
    const Result r = shrink::testing::run_tool(command, kHangGuardSeconds);
    nlohmann::json& tally = summary_[binary];
    bump(tally, "runs");
    ASSERT_GE(r.exit_code, 0) << "killed by a signal (or hung):\n" << r.output;
    EXPECT_LE(r.exit_code, 127) << r.output;
    if (v.broken) {
      EXPECT_NE(r.exit_code, 0) << "success on a broken file:\n" << r.output;
      EXPECT_NE(r.output.find(file), std::string::npos) << "the message does not name " << file << ":\n" << r.output;
      if (r.exit_code != 0) bump(tally, "refused");
    } else {
      bump(tally, r.exit_code == 0 ? "edited_still_valid" : "edited_refused");
    }
    bump(tally["exit_codes"], std::to_string(r.exit_code));
  }

  static void bump(nlohmann::json& counts, const std::string& key) {
    counts[key] = counts.contains(key) ? counts[key].get<int>() + 1 : 1;
  }

  nlohmann::json summary_ = nlohmann::json::object();
};

TEST_F(MalformedFiles, EveryBinaryRefusesBrokenCheckpointsAndNeverCrashes) {
  const std::string good_path = (dir_ / "good.safetensors").string();
  ASSERT_EQ(shrink::testing::run("shrink-train --model mlp:784-16-2 --epochs 0 --data " + data() +
                                 " --out " + good_path).exit_code, 0);
  const std::string good = read_bytes(good_path);

  shrink::SafetensorsContents c = shrink::load_safetensors(good_path);
  std::vector<std::pair<std::string, shrink::Tensor>> tensors(c.tensors.begin(), c.tensors.end());
  static_cast<float*>(tensors.front().second.raw_data())[0] = std::nanf("");
  shrink::save_safetensors((dir_ / "nan.safetensors").string(), tensors, c.metadata);
  shrink::save_safetensors((dir_ / "foreign.safetensors").string(), tensors, {});

  const fs::path bad = dir_ / "bad.safetensors", out = dir_ / "out.safetensors";
  const std::vector<std::pair<std::string, std::string>> commands = {
      {"shrink-eval", "shrink-eval " + bad.string() + " --data " + data()},
      {"shrink-prune", "shrink-prune " + bad.string() + " --keep 0.5 --calib-samples 32 --data " + data() +
                           " --out " + out.string()},
      {"shrink-sparsify", "shrink-sparsify " + bad.string() + " --out " + out.string()},
      {"shrink-train", "shrink-train --model " + bad.string() + " --epochs 1 --data " + data() +
                           " --out " + out.string()},
  };
  const auto variants = checkpoint_variants(good, read_bytes(dir_ / "train-images-idx3-ubyte"),
                                            read_bytes(dir_ / "nan.safetensors"),
                                            read_bytes(dir_ / "foreign.safetensors"));
  for (const Variant& v : variants) {
    write_bytes(bad, v.bytes);
    for (const auto& [binary, command] : commands) {
      // Header edits go through the loader every binary shares: one binary suffices for
      // them; broken files go to every binary.
      if (!v.broken && binary != "shrink-eval") continue;
      check(binary, command, v, bad.string());
      fs::remove(out);
    }
  }
  // A directory where a checkpoint should be.
  fs::remove(bad);
  fs::create_directories(bad);
  for (const auto& [binary, command] : commands) check(binary, command, {"a-directory", "", true}, bad.string());
  summary_["checkpoint_variants"] = variants.size() + 1;
}

TEST_F(MalformedFiles, EveryBinaryRefusesBrokenDataSetFiles) {
  const std::string ckpt = (dir_ / "good.safetensors").string();
  ASSERT_EQ(shrink::testing::run("shrink-train --model mlp:784-16-2 --epochs 0 --data " + data() +
                                 " --out " + ckpt).exit_code, 0);
  const fs::path data_dir = dir_ / "data";
  fs::create_directories(data_dir);
  const char* files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte",
                         "t10k-labels-idx1-ubyte.gz"};
  std::map<std::string, std::string> originals;
  for (const char* f : files) originals[f] = read_bytes(dir_ / f);

  shrink::Generator gen(7);
  const std::string images = originals["train-images-idx3-ubyte"];
  const std::string labels_gz = originals["train-labels-idx1-ubyte.gz"];
  std::string wrong_magic = images;
  wrong_magic[2] = 0x0B;  // type code 0x0B: int16, not what an image file holds
  std::string huge_dims = images;
  for (int b = 4; b < 16; ++b) huge_dims[b] = static_cast<char>(0x7F);  // 3 dims of ~2^31
  // Test images of 27x28: a split whose sample shape differs from the training split's.
  std::string other_shape = originals["t10k-images-idx3-ubyte"];
  other_shape[11] = 27;
  const std::vector<std::pair<std::string, Variant>> variants = {
      {"train-images-idx3-ubyte", {"empty", "", true}},
      {"train-images-idx3-ubyte", {"cut-at-half", images.substr(0, images.size() / 2), true}},
      {"train-images-idx3-ubyte", {"header-only", images.substr(0, 16), true}},
      {"train-images-idx3-ubyte", {"random-bytes", random_bytes(5000, gen), true}},
      {"train-images-idx3-ubyte", {"wrong-type-code", wrong_magic, true}},
      {"train-images-idx3-ubyte", {"claims-2^93-pixels", huge_dims, true}},
      {"train-labels-idx1-ubyte.gz", {"gzip-cut-short", labels_gz.substr(0, labels_gz.size() - 9), true}},
      {"train-labels-idx1-ubyte.gz", {"not-gzip", random_bytes(300, gen), true}},
      {"train-labels-idx1-ubyte.gz", {"an-image-file", images, true}},
      {"t10k-images-idx3-ubyte", {"other-image-shape", other_shape, true}},
  };
  const std::vector<std::pair<std::string, std::string>> commands = {
      {"shrink-train", "shrink-train --model mlp:784-16-2 --epochs 1 --data idx:" + data_dir.string() +
                           " --out " + (dir_ / "o.safetensors").string()},
      {"shrink-eval", "shrink-eval " + ckpt + " --data idx:" + data_dir.string()},
      {"shrink-prune", "shrink-prune " + ckpt + " --keep 0.5 --data idx:" + data_dir.string() + " --out " +
                           (dir_ / "p.safetensors").string()},
  };
  for (const auto& [file, v] : variants) {
    for (const char* f : files) write_bytes(data_dir / f, originals[f]);
    write_bytes(data_dir / file, v.bytes);
    for (const auto& [binary, command] : commands) check(binary, command, v, file);
  }
  summary_["data_variants"] = variants.size();
}

}  // namespace
