// Device memory and host <-> device copies.
//
// cudaMalloc/cudaFree synchronise the device and cost tens of microseconds, and a training
// step allocates the same activation and gradient sizes every time; so freed blocks are
// kept in per-size free lists and handed out again, and a steady-state loop calls
// cudaMalloc no more. Every kernel and copy runs on the one stream (stream()), so a block
// freed on the host side may be reused at once: work that reads it is queued before any
// work that writes it again ("stream-ordered" frees).
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_backend_impl.h"

namespace shrink::kernels::cuda {

namespace {

// Small blocks (<= 1 MiB) are rounded to 512 B and carved from 2 MiB slabs, so thousands of
// biases and scalars cost a handful of cudaMalloc calls. Large blocks are rounded to 2 MiB,
// the driver's own granularity for big allocations, so near-equal sizes share a free list.
constexpr std::size_t kSmallLimit = std::size_t{1} << 20;
constexpr std::size_t kSmallRound = 512;
constexpr std::size_t kSlabBytes = std::size_t{2} << 20;
constexpr std::size_t kLargeRound = std::size_t{2} << 20;

// No device holds more; refusing above it keeps the rounding below from wrapping.
constexpr std::size_t kMaxBlockBytes = std::numeric_limits<std::size_t>::max() / 2;

std::size_t rounded_size(std::size_t bytes) {
  const std::size_t unit = bytes <= kSmallLimit ? kSmallRound : kLargeRound;
  return (bytes + unit - 1) / unit * unit;
}

std::string mib(std::size_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

class DeviceCache {
 public:
  void* allocate(std::size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& list = free_[size];
    if (!list.empty()) {
      void* p = list.back();
      list.pop_back();
      cached_ -= size;
      in_use_ += size;
      return p;
    }
    void* p = size <= kSmallLimit ? carve(size) : device_malloc(size);
    in_use_ += size;
    return p;
  }

  // Never throws and makes no CUDA call: it runs from destructors, possibly at exit.
  void release(void* p, std::size_t size) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    try {
      free_[size].push_back(p);
      cached_ += size;
      in_use_ -= size;
    } catch (...) {  // out of host memory for the list: leak the block rather than abort
    }
  }

  std::size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }
  std::size_t malloc_calls() {
    std::lock_guard<std::mutex> lock(mutex_);
    return malloc_calls_;
  }

 private:
  // cudaMalloc with one retry after returning every idle large block to the driver.
  void* device_malloc(std::size_t size) {
    void* p = nullptr;
    ++malloc_calls_;
    cudaError_t status = cudaMalloc(&p, size);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      const std::size_t released = release_large_blocks();
      status = cudaMalloc(&p, size);
      if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        std::size_t device_free = 0, device_total = 0;
        cudaMemGetInfo(&device_free, &device_total);
        cudaGetLastError();
        throw Error("cuda: out of memory allocating " + mib(size) + " (" + std::to_string(size) +
                    " bytes): shrink's tensors hold " + mib(in_use_) + ", " + mib(cached_) +
                    " more sit idle in small-block slabs after " + mib(released) +
                    " of cached blocks were released; the device has " + mib(device_free) +
                    " free of " + mib(device_total));
      }
    }
    check(status, "cudaMalloc");
    return p;
  }

  std::size_t release_large_blocks() {
    // Queued kernels may still read blocks freed on the host side: drain the stream first.
    check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize");
    std::size_t released = 0;
    for (auto& [size, list] : free_) {
      if (size <= kSmallLimit) continue;  // small blocks live inside slabs
      for (void* p : list) {
        check(cudaFree(p), "cudaFree");
        released += size;
      }
      cached_ -= size * list.size();
      list.clear();
    }
    return released;
  }

  void* carve(std::size_t size) {
    if (slab_left_ < size) {
      // The slab's tail becomes an ordinary free block, so no carved byte is lost.
      if (slab_left_ > 0) {
        free_[slab_left_].push_back(slab_next_);
        cached_ += slab_left_;
        slab_left_ = 0;
      }
      slab_next_ = static_cast<char*>(device_malloc(kSlabBytes));
      slab_left_ = kSlabBytes;
    }
    void* p = slab_next_;
    slab_next_ += size;
    slab_left_ -= size;
    return p;
  }

  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  char* slab_next_ = nullptr;
  std::size_t slab_left_ = 0;
  std::size_t cached_ = 0;
  std::size_t in_use_ = 0;  // bytes handed out and not yet released
  std::size_t malloc_calls_ = 0;
};

// Never destroyed: at process exit the driver may be gone before static destructors run.
DeviceCache& cache() {
  static DeviceCache* instance = new DeviceCache;
  return *instance;
}

// Uploads from pageable memory go through one pinned staging buffer, so copy_from_host can
// return as soon as the host bytes are copied (the caller may then reuse its buffer) while
// the DMA runs behind queued kernels. An event guards the buffer against the next upload.
// Larger uploads copy directly and synchronise.
constexpr std::size_t kMaxStagedBytes = std::size_t{8} << 20;

class Staging {
 public:
  bool upload(void* dst, const void* src, std::size_t bytes) {
    if (bytes > kMaxStagedBytes) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!done_) SHRINK_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
    else SHRINK_CUDA_CHECK(cudaEventSynchronize(done_));  // previous upload has read it
    if (bytes > capacity_) {
      if (buffer_) SHRINK_CUDA_CHECK(cudaFreeHost(buffer_));
      buffer_ = nullptr;
      capacity_ = 0;
      const std::size_t grown = bytes < (std::size_t{1} << 20) ? (std::size_t{1} << 20) : bytes;
      SHRINK_CUDA_CHECK(cudaMallocHost(&buffer_, grown));
      capacity_ = grown;
    }
    std::memcpy(buffer_, src, bytes);
    SHRINK_CUDA_CHECK(cudaMemcpyAsync(dst, buffer_, bytes, cudaMemcpyHostToDevice, stream()));
    SHRINK_CUDA_CHECK(cudaEventRecord(done_, stream()));
    return true;
  }

 private:
  std::mutex mutex_;
  void* buffer_ = nullptr;
  std::size_t capacity_ = 0;
  cudaEvent_t done_ = nullptr;
};

Staging& staging() {
  static Staging* instance = new Staging;
  return *instance;
}

}  // namespace

std::size_t cached_bytes() { return cache().cached_bytes(); }
std::size_t cuda_malloc_calls() { return cache().malloc_calls(); }

void* CudaBackend::allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  // Unsupported (not a CUDA error) so Tensor reports "no GPU" rather than a driver code.
  static const bool present = device_count() > 0;
  if (!present) throw Unsupported("cuda: no CUDA GPU is present on this machine");
  if (bytes > kMaxBlockBytes)
    throw Error("cuda: cannot allocate " + std::to_string(bytes) + " bytes (more than any "
                "device holds; the limit is " + std::to_string(kMaxBlockBytes) + ")");
  return cache().allocate(rounded_size(bytes));
}

void CudaBackend::deallocate(void* ptr, std::size_t bytes) {
  if (ptr) cache().release(ptr, rounded_size(bytes));
}

void CudaBackend::copy_from_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  if (staging().upload(dst, src, bytes)) return;
  SHRINK_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
  SHRINK_CUDA_CHECK(cudaStreamSynchronize(stream()));  // src may be reused on return
}

void CudaBackend::copy_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  SHRINK_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  SHRINK_CUDA_CHECK(cudaStreamSynchronize(stream()));  // the caller reads dst next
}

void CudaBackend::copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  SHRINK_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
}

void CudaBackend::synchronize() { SHRINK_CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace shrink::kernels::cuda
