// libFuzzer target: the CIFAR-10 binary reader (datasets/cifar10.h). The input is one
// batch file: read_cifar10 reads it, and when it holds records load_cifar10_files builds a
// data set with it as both splits (statistics, standardisation). Every input must load or
// throw shrink::Error; a loaded file holds exactly size / 3073 records with labels 0..9
// and raw pixels 0..255, and the standardised images are finite.
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "datasets/cifar10.h"
#include "tests/fuzz/fuzz_input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace shrink::datasets;
  static shrink::fuzz::InputFile file;
  const std::string& path = file.hold(data, size);
  try {
    const CifarRecords records = read_cifar10({path});
    const std::int64_t n = records.labels.size(0);
    SHRINK_FUZZ_ASSERT(static_cast<std::size_t>(n * kCifarRecordBytes) == size);
    SHRINK_FUZZ_ASSERT(records.images.shape() == (shrink::Shape{n, 3, 32, 32}));
    const std::int64_t* labels = records.labels.data<std::int64_t>();
    const float* pixels = records.images.data<float>();
    for (std::int64_t i = 0; i < n; ++i) {
      SHRINK_FUZZ_ASSERT(labels[i] == data[i * kCifarRecordBytes]);
      SHRINK_FUZZ_ASSERT(labels[i] >= 0 && labels[i] < kCifarClasses);
      for (std::int64_t p = 0; p < kCifarPixels; ++p)
        SHRINK_FUZZ_ASSERT(pixels[i * kCifarPixels + p] == data[i * kCifarRecordBytes + 1 + p]);
    }
    if (n > 0) {
      const Dataset ds = load_cifar10_files("fuzz", path, CifarFiles{{path}, path});
      SHRINK_FUZZ_ASSERT(ds.train.size() == n && ds.test.size() == n && ds.num_classes == kCifarClasses);
      SHRINK_FUZZ_ASSERT(ds.channel_mean.size() == 3 && ds.channel_std.size() == 3);
      const float* x = ds.train.images.data<float>();
      for (std::int64_t k = 0; k < ds.train.images.numel(); ++k) SHRINK_FUZZ_ASSERT(std::isfinite(x[k]));
    }
    shrink::fuzz::InputTally::record(data, size, /*refused=*/false);
  } catch (const shrink::Error&) {
    shrink::fuzz::InputTally::record(data, size, /*refused=*/true);
  }
  return 0;
}
