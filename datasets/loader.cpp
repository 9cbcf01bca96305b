#include "datasets/loader.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace shrink::datasets {

namespace {

// Batches gathered ahead of the consumer: enough to hide the copy behind a training
// step, few enough to bound memory.
constexpr std::size_t kPrefetch = 3;

// derive_seed streams (core/random.h); datasets/subset.cpp uses 2.
constexpr std::uint64_t kShuffleStream = 0;
constexpr std::uint64_t kTransformStream = 1;

}  // namespace

DataLoader::DataLoader(const Split& split, std::int64_t batch_size, bool shuffle,
                       std::uint64_t seed, bool drop_last)
    : split_(split), batch_size_(batch_size), shuffle_(shuffle), seed_(seed),
      drop_last_(drop_last) {
  SHRINK_CHECK(batch_size > 0, "DataLoader: batch_size must be positive, got ", batch_size);
  SHRINK_CHECK(split.images.defined() && split.labels.defined(),
               "DataLoader: the split has no images or no labels");
  SHRINK_CHECK(split.images.device().is_cpu() && split.labels.device().is_cpu(),
               "DataLoader: the split must live on the CPU; move batches to the GPU instead");
  SHRINK_CHECK(split.images.dim() >= 1, "DataLoader: images need a batch axis, got shape ",
               shape_str(split.images.shape()));
  SHRINK_CHECK(split.labels.dtype() == DType::Int64 && split.labels.dim() == 1,
               "DataLoader: labels must be int64 (N), got shape ", shape_str(split.labels.shape()));
  SHRINK_CHECK(split.images.size(0) == split.labels.size(0), "DataLoader: ",
               split.images.size(0), " images but ", split.labels.size(0), " labels");
  num_samples_ = split.labels.size(0);
  sample_shape_.assign(split.images.shape().begin() + 1, split.images.shape().end());
  image_row_bytes_ = static_cast<std::size_t>(numel(sample_shape_)) *
                     dtype_size(split.images.dtype());
}

DataLoader::~DataLoader() { stop_worker(); }

std::int64_t DataLoader::size() const {
  // Not (n + b - 1) / b: that overflows for a batch size near the int64 limit.
  const std::int64_t full = num_samples_ / batch_size_;
  return drop_last_ || num_samples_ % batch_size_ == 0 ? full : full + 1;
}

std::vector<std::int64_t> DataLoader::epoch_order(std::int64_t epoch) const {
  std::vector<std::int64_t> order(static_cast<std::size_t>(num_samples_));
  for (std::int64_t i = 0; i < num_samples_; ++i) order[i] = i;
  if (!shuffle_) return order;
  // Fisher-Yates: every permutation equally likely, given an unbiased next_below.
  Generator gen(derive_seed(seed_, static_cast<std::uint64_t>(epoch), kShuffleStream));
  for (std::int64_t i = num_samples_ - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(gen.next_below(static_cast<std::uint64_t>(i) + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

Batch DataLoader::gather(const std::vector<std::int64_t>& order, std::int64_t batch_index) const {
  const std::int64_t begin = batch_index * batch_size_;
  const std::int64_t count = std::min(batch_size_, num_samples_ - begin);
  Shape image_shape = {count};
  image_shape.insert(image_shape.end(), sample_shape_.begin(), sample_shape_.end());
  Batch batch{Tensor::empty(image_shape, split_.images.dtype()),
              Tensor::empty({count}, DType::Int64)};
  const auto* src_images = static_cast<const std::uint8_t*>(split_.images.raw_data());
  const auto* src_labels = split_.labels.data<std::int64_t>();
  auto* dst_images = static_cast<std::uint8_t*>(batch.images.raw_data());
  auto* dst_labels = batch.labels.data<std::int64_t>();
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t sample = order[begin + i];
    std::memcpy(dst_images + i * image_row_bytes_, src_images + sample * image_row_bytes_,
                image_row_bytes_);
    dst_labels[i] = src_labels[sample];
  }
  return batch;
}

void DataLoader::produce(std::vector<std::int64_t> order, std::int64_t epoch,
                         std::int64_t first_batch, Transform transform) {
  try {
    const std::int64_t batches = size();
    for (std::int64_t b = first_batch; b < batches; ++b) {
      {
        std::unique_lock lock(channel_.mutex);
        channel_.changed.wait(lock,
                              [&] { return channel_.stop || channel_.ready.size() < kPrefetch; });
        if (channel_.stop) return;
      }
      Batch batch = gather(order, b);
      if (transform) {
        Generator gen(derive_seed(seed_, static_cast<std::uint64_t>(epoch),
                                  kTransformStream + static_cast<std::uint64_t>(b)));
        transform(batch, gen);
      }
      std::lock_guard lock(channel_.mutex);
      channel_.ready.push_back(std::move(batch));
      channel_.changed.notify_all();
    }
  } catch (...) {
    std::lock_guard lock(channel_.mutex);
    channel_.error = std::current_exception();
  }
  std::lock_guard lock(channel_.mutex);
  channel_.finished = true;
  channel_.changed.notify_all();
}

void DataLoader::stop_worker() {
  if (worker_.joinable()) {
    {
      std::lock_guard lock(channel_.mutex);
      channel_.stop = true;
    }
    channel_.changed.notify_all();
    worker_.join();
  }
  channel_.ready.clear();
  channel_.stop = false;
  channel_.finished = false;
  channel_.error = nullptr;
}

void DataLoader::start_epoch(std::int64_t epoch, std::int64_t first_batch) {
  SHRINK_CHECK(epoch >= 0, "DataLoader::start_epoch: epoch must be >= 0, got ", epoch);
  SHRINK_CHECK(first_batch >= 0 && first_batch <= size(), "DataLoader::start_epoch: first_batch ",
               first_batch, " is outside the epoch's ", size(), " batches");
  stop_worker();
  started_ = true;
  worker_ = std::thread(&DataLoader::produce, this, epoch_order(epoch), epoch, first_batch,
                        transform_);
}

std::optional<Batch> DataLoader::next() {
  if (!started_) start_epoch(0);
  std::unique_lock lock(channel_.mutex);
  channel_.changed.wait(lock, [&] { return !channel_.ready.empty() || channel_.finished; });
  if (!channel_.ready.empty()) {
    Batch batch = std::move(channel_.ready.front());
    channel_.ready.pop_front();
    channel_.changed.notify_all();
    return batch;
  }
  if (channel_.error) std::rethrow_exception(std::exchange(channel_.error, nullptr));
  return std::nullopt;
}

}  // namespace shrink::datasets
