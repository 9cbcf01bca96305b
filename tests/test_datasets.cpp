// Data sets: loading an `idx:DIR` of generated files (shapes, labels, normalisation),
// the errors for mismatched counts, missing files, unknown specs and missing named data
// sets, $SHRINK_DATA_DIR taking precedence, and the real data sets when installed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "datasets/idx.h"
#include "datasets/registry.h"

namespace {

namespace fs = std::filesystem;
using shrink::Error;
using namespace shrink::datasets;

fs::path temp_dir() {
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(testing::TempDir()) / "shrink_test_datasets" / info->name();
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Sets an environment variable for one scope and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { old_ ? setenv(name_, old_->c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Image i of a split has every pixel equal to (i * 7 + offset) % 256, label i % classes.
void write_split(const fs::path& dir, const std::string& prefix, std::int64_t n, int classes,
                 int offset, bool gz, std::int64_t label_count = -1) {
  IdxArray images{{n, 4, 3}, {}};
  for (std::int64_t i = 0; i < n; ++i)
    images.data.insert(images.data.end(), 12, static_cast<std::uint8_t>((i * 7 + offset) % 256));
  if (label_count < 0) label_count = n;
  IdxArray labels{{label_count}, {}};
  for (std::int64_t i = 0; i < label_count; ++i)
    labels.data.push_back(static_cast<std::uint8_t>(i % classes));
  const std::string ext = gz ? ".gz" : "";
  write_idx((dir / (prefix + "-images-idx3-ubyte" + ext)).string(), images);
  write_idx((dir / (prefix + "-labels-idx1-ubyte" + ext)).string(), labels);
}

std::string load_error(const std::string& spec) {
  try {
    load_dataset(spec);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Datasets, LoadsIdxDirectoryWithTrainStatistics) {
  const fs::path dir = temp_dir();
  write_split(dir, "train", 50, 3, 0, /*gz=*/true);
  write_split(dir, "t10k", 20, 5, 100, /*gz=*/false);  // mixed raw and .gz in one directory
  const Dataset ds = load_dataset("idx:" + dir.string());

  EXPECT_EQ(ds.name, "idx:" + dir.string());
  EXPECT_EQ(ds.num_classes, 5);  // largest label over both splits + 1
  EXPECT_EQ(ds.sample_shape, (shrink::Shape{1, 4, 3}));
  EXPECT_EQ(ds.train.images.shape(), (shrink::Shape{50, 1, 4, 3}));
  EXPECT_EQ(ds.test.images.shape(), (shrink::Shape{20, 1, 4, 3}));
  EXPECT_EQ(ds.train.images.dtype(), shrink::DType::Float32);
  EXPECT_EQ(ds.train.labels.dtype(), shrink::DType::Int64);
  EXPECT_EQ(ds.train.size(), 50);
  EXPECT_EQ(ds.test.size(), 20);

  // Reference statistics of the training pixels in [0, 1] units.
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < 50; ++i) {
    const double v = ((i * 7) % 256) / 255.0;
    sum += v;
    sum_sq += v * v;
  }
  const double mean = sum / 50, std = std::sqrt(sum_sq / 50 - mean * mean);
  EXPECT_NEAR(ds.mean, mean, 1e-12);
  EXPECT_NEAR(ds.std, std, 1e-12);
  EXPECT_EQ(ds.channel_mean, std::vector<double>{ds.mean});  // one channel: the scalars are its statistics
  EXPECT_EQ(ds.channel_std, std::vector<double>{ds.std});
  EXPECT_EQ(ds.stored_shape, ds.sample_shape);

  const auto train = ds.train.images.to_vector<float>();
  const auto test = ds.test.images.to_vector<float>();
  const auto train_labels = ds.train.labels.to_vector<std::int64_t>();
  const auto test_labels = ds.test.labels.to_vector<std::int64_t>();
  for (int i = 0; i < 50; ++i) {
    EXPECT_NEAR(train[i * 12 + 5], (((i * 7) % 256) / 255.0 - mean) / std, 1e-5) << i;
    EXPECT_EQ(train_labels[i], i % 3);
  }
  for (int i = 0; i < 20; ++i) {  // the test split uses the training statistics
    EXPECT_NEAR(test[i * 12], (((i * 7 + 100) % 256) / 255.0 - mean) / std, 1e-5) << i;
    EXPECT_EQ(test_labels[i], i % 5);
  }
  // Standardised training pixels: mean 0, variance 1.
  double m = 0, v = 0;
  for (float x : train) m += x;
  m /= train.size();
  for (float x : train) v += (x - m) * (x - m);
  EXPECT_NEAR(m, 0.0, 1e-5);
  EXPECT_NEAR(v / train.size(), 1.0, 1e-4);
}

TEST(Datasets, CountMismatchNamesBothFiles) {
  const fs::path dir = temp_dir();
  write_split(dir, "train", 10, 2, 0, false, /*label_count=*/9);
  write_split(dir, "t10k", 4, 2, 0, false);
  const std::string message = load_error("idx:" + dir.string());
  EXPECT_TRUE(contains(message, (dir / "train-images-idx3-ubyte").string())) << message;
  EXPECT_TRUE(contains(message, (dir / "train-labels-idx1-ubyte").string())) << message;
  EXPECT_TRUE(contains(message, "10 images")) << message;
  EXPECT_TRUE(contains(message, "9 labels")) << message;
}

TEST(Datasets, MissingFilesInIdxDirectoryAreNamed) {
  const fs::path dir = temp_dir();
  write_split(dir, "train", 10, 2, 0, false);
  const std::string message = load_error("idx:" + dir.string());
  EXPECT_TRUE(contains(message, "t10k-images-idx3-ubyte[.gz]")) << message;
  EXPECT_TRUE(contains(message, "t10k-labels-idx1-ubyte[.gz]")) << message;
  EXPECT_FALSE(contains(message, "train-images")) << message;
  EXPECT_TRUE(contains(load_error("idx:" + (dir / "nope").string()), "not a directory"));
}

TEST(Datasets, UnknownSpecListsTheValidOnes) {
  const std::string message = load_error("cifar-100");
  EXPECT_TRUE(contains(message, "cifar-100")) << message;
  for (const char* valid : {"fashion-mnist", "mnist", "idx:DIR"})
    EXPECT_TRUE(contains(message, valid)) << message;
}

TEST(Datasets, MissingNamedDatasetSaysHowToInstall) {
  const fs::path dir = temp_dir();
  const std::string fashion = [&] {
    try {
      locate_dataset("fashion-mnist", {(dir / "fashion-mnist").string()});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_TRUE(contains(fashion, "fashion-mnist not found in")) << fashion;
  EXPECT_TRUE(contains(fashion, (dir / "fashion-mnist").string())) << fashion;
  EXPECT_TRUE(contains(fashion, "apt-get install dataset-fashion-mnist")) << fashion;

  // mnist through the public entry point, with every place it searches pointed away.
  const ScopedEnv data_dir("SHRINK_DATA_DIR", dir.string());
  const ScopedEnv home("HOME", (dir / "home").string());
  const fs::path old_cwd = fs::current_path();
  fs::current_path(dir);
  const std::string mnist = load_error("mnist");
  fs::current_path(old_cwd);
  EXPECT_TRUE(contains(mnist, "mnist not found in")) << mnist;
  EXPECT_TRUE(contains(mnist, (dir / "mnist").string())) << mnist;
  EXPECT_TRUE(contains(mnist, (dir / "home" / ".cache/shrink/mnist").string())) << mnist;
  EXPECT_TRUE(contains(mnist, "scripts/fetch_mnist.sh")) << mnist;
}

TEST(Datasets, PartialDirectoryIsReportedWithWhatItLacks) {
  const fs::path dir = temp_dir();
  write_split(dir, "train", 4, 2, 0, true);
  try {
    locate_dataset("mnist", {dir.string()});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_TRUE(contains(e.what(), "lacks t10k-images-idx3-ubyte[.gz]")) << e.what();
  }
}

TEST(Datasets, DataDirEnvironmentVariableComesFirst) {
  const fs::path dir = temp_dir();
  fs::create_directories(dir / "fashion-mnist");
  write_split(dir / "fashion-mnist", "train", 6, 10, 0, true);
  write_split(dir / "fashion-mnist", "t10k", 3, 10, 0, true);
  const ScopedEnv data_dir("SHRINK_DATA_DIR", dir.string());
  EXPECT_EQ(search_dirs("fashion-mnist").front(), (dir / "fashion-mnist").string());
  const Dataset ds = load_dataset("fashion-mnist");
  EXPECT_EQ(ds.source, (dir / "fashion-mnist").string());
  EXPECT_EQ(ds.train.size(), 6);
}

// The real data sets, where this machine has them.
void check_real(const std::string& name, std::int64_t train, std::int64_t test) {
  std::string dir;
  try {
    dir = locate_dataset(name, search_dirs(name));
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  const Dataset ds = load_dataset(name);
  EXPECT_EQ(ds.source, dir);
  EXPECT_EQ(ds.train.size(), train);
  EXPECT_EQ(ds.test.size(), test);
  EXPECT_EQ(ds.num_classes, 10);
  EXPECT_EQ(ds.sample_shape, (shrink::Shape{1, 28, 28}));
  for (const Split* split : {&ds.train, &ds.test}) {
    std::vector<std::int64_t> per_class(10, 0);
    for (auto label : split->labels.to_vector<std::int64_t>()) {
      ASSERT_GE(label, 0);
      ASSERT_LT(label, 10);
      ++per_class[label];
    }
    for (auto count : per_class) EXPECT_GT(count, 0);
  }
}

TEST(Datasets, RealFashionMnistWhenInstalled) { check_real("fashion-mnist", 60000, 10000); }
TEST(Datasets, RealMnistWhenFetched) { check_real("mnist", 7996, 2004); }

}  // namespace
