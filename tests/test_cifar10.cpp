// The CIFAR-10 binary reader on generated files: every pixel and label round-trips, the
// per-channel statistics come from the training split, the tarball's folder is found, and
// wrong sizes, bad labels, missing and truncated files are errors naming the file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "core/error.h"
#include "datasets/cifar10.h"
#include "datasets/registry.h"
#include "tests/generated_cifar10.h"

namespace {

namespace fs = std::filesystem;
using namespace shrink::datasets;
using shrink::testing::cifar_label;
using shrink::testing::cifar_pixel;
using shrink::testing::cifar_records;
using shrink::testing::write_bytes;
using shrink::testing::write_cifar10_dir;

fs::path temp_dir() {
  const auto* info = testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(testing::TempDir()) / "shrink_test_cifar10" / info->name();
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

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

std::string load_error(const std::string& spec) {
  try {
    load_dataset(spec);
  } catch (const shrink::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Cifar10, RecordsRoundTripExactly) {
  const fs::path dir = temp_dir();
  write_bytes(dir / "a.bin", cifar_records(0, 3));
  write_bytes(dir / "b.bin", cifar_records(3, 2));
  const CifarRecords r = read_cifar10({(dir / "a.bin").string(), (dir / "b.bin").string()});
  ASSERT_EQ(r.images.shape(), (shrink::Shape{5, 3, 32, 32}));
  ASSERT_EQ(r.labels.shape(), (shrink::Shape{5}));
  const auto images = r.images.to_vector<float>();
  const auto labels = r.labels.to_vector<std::int64_t>();
  for (std::int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(labels[i], cifar_label(i));
    for (std::int64_t p = 0; p < 3072; ++p) ASSERT_EQ(images[i * 3072 + p], cifar_pixel(i, p)) << i << " " << p;
  }
  // Red plane first, row-major: pixel (c=1, y=2, x=5) is byte 1 + 1024 + 2 * 32 + 5 of its record.
  EXPECT_EQ(images[1 * 3072 + 1024 + 2 * 32 + 5], cifar_pixel(1, 1024 + 69));
}

TEST(Cifar10, LoadsWithPerChannelTrainingStatistics) {
  const fs::path dir = temp_dir();
  const std::string spec = write_cifar10_dir(dir, 4, 6);
  const Dataset ds = load_dataset(spec);
  EXPECT_EQ(ds.name, spec);
  EXPECT_EQ(ds.num_classes, 10);
  EXPECT_EQ(ds.sample_shape, (shrink::Shape{3, 32, 32}));
  EXPECT_EQ(ds.stored_shape, ds.sample_shape);
  ASSERT_EQ(ds.train.images.shape(), (shrink::Shape{20, 3, 32, 32}));
  ASSERT_EQ(ds.test.images.shape(), (shrink::Shape{6, 3, 32, 32}));

  // Reference statistics over the 20 training records, per channel, in [0, 1] units.
  double mean[3], std[3], all = 0, all_sq = 0;
  for (int c = 0; c < 3; ++c) {
    double sum = 0, sum_sq = 0;
    for (int i = 0; i < 20; ++i)
      for (int k = 0; k < 1024; ++k) {
        const double v = cifar_pixel(i, c * 1024 + k) / 255.0;
        sum += v, sum_sq += v * v;
      }
    all += sum, all_sq += sum_sq;
    mean[c] = sum / 20480;
    std[c] = std::sqrt(sum_sq / 20480 - mean[c] * mean[c]);
  }
  ASSERT_EQ(ds.channel_mean.size(), 3u);
  ASSERT_EQ(ds.channel_std.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(ds.channel_mean[c], mean[c], 1e-12) << c;
    EXPECT_NEAR(ds.channel_std[c], std[c], 1e-12) << c;
  }
  EXPECT_GT(std::abs(ds.channel_mean[0] - ds.channel_mean[2]), 0.01) << "the generated channels differ";
  EXPECT_NEAR(ds.mean, all / 61440, 1e-12);

  const auto train = ds.train.images.to_vector<float>();
  const auto test = ds.test.images.to_vector<float>();
  const auto train_labels = ds.train.labels.to_vector<std::int64_t>();
  const auto test_labels = ds.test.labels.to_vector<std::int64_t>();
  for (std::int64_t i = 0; i < 20; ++i) {
    EXPECT_EQ(train_labels[i], cifar_label(i));  // files in order 1..5
    for (std::int64_t p = 0; p < 3072; p += 97)
      ASSERT_NEAR(train[i * 3072 + p], (cifar_pixel(i, p) / 255.0 - mean[p / 1024]) / std[p / 1024], 1e-5);
  }
  for (std::int64_t i = 0; i < 6; ++i) {  // the test split uses the training statistics
    EXPECT_EQ(test_labels[i], cifar_label(20 + i));
    for (std::int64_t p = 0; p < 3072; p += 89)
      ASSERT_NEAR(test[i * 3072 + p], (cifar_pixel(20 + i, p) / 255.0 - mean[p / 1024]) / std[p / 1024], 1e-5);
  }
  // Black normalises per channel.
  const std::vector<float> black = black_values(ds);
  ASSERT_EQ(black.size(), 3u);
  for (int c = 0; c < 3; ++c) EXPECT_FLOAT_EQ(black[c], static_cast<float>(-mean[c] / std[c]));
}

TEST(Cifar10, FindsTheTarballFolderAndTheNamedSet) {
  const fs::path dir = temp_dir();
  write_cifar10_dir(dir / "cifar10" / "cifar-10-batches-bin", 2, 3);
  const Dataset ds = load_dataset("cifar10:" + (dir / "cifar10").string());
  EXPECT_EQ(ds.train.size(), 10);
  EXPECT_EQ(ds.test.size(), 3);

  ScopedEnv data_dir("SHRINK_DATA_DIR", dir.string());
  const Dataset named = load_dataset("cifar10");
  EXPECT_EQ(named.name, "cifar10");
  EXPECT_EQ(named.source, (dir / "cifar10").string());
  EXPECT_EQ(named.train.size(), 10);
}

TEST(Cifar10, NamedSetMissingSaysHowToPlaceIt) {
  const fs::path dir = temp_dir();
  ScopedEnv data_dir("SHRINK_DATA_DIR", dir.string());
  ScopedEnv home("HOME", dir.string());
  const std::string e = load_error("cifar10");
  EXPECT_TRUE(contains(e, (dir / "cifar10").string())) << e;
  EXPECT_TRUE(contains(e, "cannot be downloaded")) << e;
  EXPECT_TRUE(contains(e, "cifar-10-batches-bin")) << e;
  EXPECT_TRUE(contains(e, "data_batch_1.bin")) << e;
}

TEST(Cifar10, WrongSizeNamesTheFileItsSizeAndTheRecordSize) {
  const fs::path dir = temp_dir();
  const std::string spec = write_cifar10_dir(dir, 2, 2);
  auto bytes = cifar_records(4, 2);
  bytes.insert(bytes.end(), 5, 0);  // 6151 bytes
  write_bytes(dir / "data_batch_3.bin", bytes);
  const std::string e = load_error(spec);
  EXPECT_TRUE(contains(e, (dir / "data_batch_3.bin").string())) << e;
  EXPECT_TRUE(contains(e, "6151 bytes")) << e;
  EXPECT_TRUE(contains(e, "3073-byte")) << e;
}

TEST(Cifar10, TruncatedFileIsAnError) {
  const fs::path dir = temp_dir();
  const std::string spec = write_cifar10_dir(dir, 2, 3);
  auto bytes = cifar_records(10, 3);
  bytes.resize(3073 + 1500);  // cut inside the second record
  write_bytes(dir / "test_batch.bin", bytes);
  const std::string e = load_error(spec);
  EXPECT_TRUE(contains(e, (dir / "test_batch.bin").string())) << e;
  EXPECT_TRUE(contains(e, "truncated")) << e;
  EXPECT_TRUE(contains(e, "1 records and 1500 bytes over")) << e;
}

TEST(Cifar10, BadLabelNamesTheFileAndRecord) {
  const fs::path dir = temp_dir();
  const std::string spec = write_cifar10_dir(dir, 9, 2);
  auto bytes = cifar_records(9, 9);
  bytes[7 * 3073] = 10;
  write_bytes(dir / "data_batch_2.bin", bytes);
  const std::string e = load_error(spec);
  EXPECT_TRUE(contains(e, (dir / "data_batch_2.bin").string())) << e;
  EXPECT_TRUE(contains(e, "record 7 ")) << e;
  EXPECT_TRUE(contains(e, "label 10")) << e;
}

TEST(Cifar10, MissingFilesAreListed) {
  const fs::path dir = temp_dir();
  const std::string spec = write_cifar10_dir(dir, 1, 1);
  fs::remove(dir / "data_batch_4.bin");
  fs::remove(dir / "test_batch.bin");
  const std::string e = load_error(spec);
  EXPECT_TRUE(contains(e, "data_batch_4.bin, test_batch.bin")) << e;
  EXPECT_FALSE(contains(e, "data_batch_1.bin")) << e;
  EXPECT_TRUE(contains(load_error("cifar10:" + (dir / "nope").string()), "is not a directory"));
  EXPECT_TRUE(contains(load_error("cifar10:"), "needs a directory"));
}

TEST(Cifar10, EmptySplitsAreErrors) {
  const fs::path dir = temp_dir();
  const std::string spec = write_cifar10_dir(dir, 0, 2);
  EXPECT_TRUE(contains(load_error(spec), "hold no records")) << load_error(spec);
  write_cifar10_dir(dir, 1, 0);
  EXPECT_TRUE(contains(load_error(spec), "test_batch.bin holds no records")) << load_error(spec);
}

TEST(Cifar10, UnknownSpecListsCifar) {
  EXPECT_TRUE(contains(load_error("cifar100"), "cifar10:DIR"));
}

}  // namespace
