// Tensor: shape, dtype, device and a shared, contiguous storage, plus the autograd
// fields (requires_grad, grad, the node that produced it). Tensors are handles: copying
// one shares the data, as in PyTorch. Every tensor is contiguous; views by reshape share
// storage, other layout changes (transpose, permute, slice) copy.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "core/shape.h"

namespace shrink {

class Generator;
struct Node;

// A device buffer; freed through its backend when the last tensor using it dies.
class Storage {
 public:
  Storage(std::size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  Device device_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype = DType::Float32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;   // accumulated by backward() on leaves
  std::shared_ptr<Node> grad_fn;      // set on results of differentiable ops
};

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::Int64; }

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories ----
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32,
                      Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32,
                      Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32,
                     Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32,
                     Device device = Device::cpu());
  static Tensor arange(std::int64_t n, DType dtype = DType::Int64, Device device = Device::cpu());
  static Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::Float32,
                      Device device = Device::cpu());
  static Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen,
                        DType dtype = DType::Float32, Device device = Device::cpu());
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                            Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::Float32, Device device = Device::cpu());

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  std::int64_t dim() const { return static_cast<std::int64_t>(shape().size()); }
  std::int64_t size(std::int64_t axis) const;
  std::int64_t numel() const { return shrink::numel(shape()); }
  DType dtype() const;
  Device device() const;
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype()); }

  // ---- raw data ----
  void* raw_data() const;  // device pointer
  template <class T> T* data() const;  // checks dtype and that the tensor is on the CPU
  template <class T> std::vector<T> to_vector() const;  // copies to the host
  double item() const;  // value of a one-element tensor, as double

  // ---- conversion ----
  Tensor to(Device device) const;  // differentiable: gradients flow back across devices
  Tensor to(DType dtype) const;    // not differentiable; a copy (or *this if same dtype)
  Tensor clone() const;            // a copy with no autograd history
  // In-place copy of `src` (same shape and dtype, any device) into this tensor's storage.
  void copy_(const Tensor& src);
  void fill_(double value);

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& requires_grad_(bool value = true);
  Tensor grad() const;               // undefined until backward() reaches this leaf
  void set_grad(const Tensor& g);
  void zero_grad();                  // drops the accumulated gradient
  const std::shared_ptr<Node>& grad_fn() const;
  Tensor detach() const;             // shares data, no history
  void backward() const;             // from a one-element tensor (seed gradient 1)
  void backward(const Tensor& seed) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  void check_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

// Differentiable reshape (a view: shares storage). One dimension may be -1.
Tensor reshape(const Tensor& x, Shape shape);

}  // namespace shrink
