// DataLoader: turns a Split into mini-batches, in a shuffled order fixed by (seed, epoch),
// with a background thread that gathers the next batches while the model trains on the
// current one.
//
//   DataLoader loader(ds.train, 128, /*shuffle=*/true, seed);
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     while (auto batch = loader.next()) train_step(batch->images, batch->labels);
//   }
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/random.h"
#include "datasets/dataset.h"

namespace shrink::datasets {

struct Batch {
  Tensor images;  // (B, ...) one sample's shape after the batch axis, dtype of the split
  Tensor labels;  // int64 (B)
};

class DataLoader {
 public:
  // Runs on the worker thread on each gathered batch (augmentation, say). `gen` is seeded
  // from (seed, epoch, batch index), so results do not depend on thread timing.
  using Transform = std::function<void(Batch& batch, Generator& gen)>;

  // `split` tensors are shared, not copied; they must stay unchanged while batches are
  // drawn. Without shuffle, batches follow the split's order.
  DataLoader(const Split& split, std::int64_t batch_size, bool shuffle, std::uint64_t seed,
             bool drop_last = false);
  ~DataLoader();  // stops and joins the worker, even mid-epoch
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  std::int64_t size() const;  // batches per epoch
  std::int64_t num_samples() const { return num_samples_; }
  std::int64_t batch_size() const { return batch_size_; }

  // Abandons any epoch in progress and begins `epoch`: its order is a pure function of
  // (seed, epoch), so a resumed run sees the same batches. `first_batch` > 0 resumes the
  // epoch there: the batches before it are skipped without being gathered, and the rest
  // (and their transforms) are exactly those of an epoch started at 0.
  void start_epoch(std::int64_t epoch, std::int64_t first_batch = 0);
  // The next batch of the current epoch, or nullopt when the epoch is over. Starts epoch 0
  // if no epoch was started. Rethrows an exception the worker hit gathering a batch.
  std::optional<Batch> next();
  // Applies from the next start_epoch on.
  void set_transform(Transform transform) { transform_ = std::move(transform); }

 private:
  // Everything the worker shares with the consumer, guarded by mutex_.
  struct Channel {
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<Batch> ready;
    bool stop = false;
    bool finished = false;
    std::exception_ptr error;
  };

  std::vector<std::int64_t> epoch_order(std::int64_t epoch) const;
  Batch gather(const std::vector<std::int64_t>& order, std::int64_t batch_index) const;
  void produce(std::vector<std::int64_t> order, std::int64_t epoch, std::int64_t first_batch,
               Transform transform);
  void stop_worker();

  Split split_;
  std::int64_t num_samples_;
  std::int64_t batch_size_;
  bool shuffle_;
  std::uint64_t seed_;
  bool drop_last_;
  std::size_t image_row_bytes_;
  Shape sample_shape_;
  Transform transform_;

  Channel channel_;
  std::thread worker_;
  bool started_ = false;
};

}  // namespace shrink::datasets
