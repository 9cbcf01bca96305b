#include "core/tensor.h"

#include <cstring>

#include "core/autograd.h"
#include "core/random.h"
#include "kernels/backend.h"

namespace shrink {

namespace {

kernels::Backend& backend_for(Device device) { return kernels::backend(device.type); }

std::shared_ptr<TensorImpl> make_impl(const Shape& shape, DType dtype, Device device) {
  for (auto d : shape)
    SHRINK_CHECK(d >= 0, "Tensor: negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(byte_size(shape, dtype_size(dtype)), device);
  return impl;
}

}  // namespace

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
  try {
    data_ = backend_for(device).allocate(bytes);
  } catch (const kernels::Unsupported& e) {  // e.g. a CUDA build on a machine without a GPU
    fail("Tensor: cannot allocate ", bytes, " bytes on ", device.str(), ": ", e.what());
  }
}

Storage::~Storage() {
  if (data_) kernels::backend(device_.type).deallocate(data_, bytes_);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  return Tensor(make_impl(shape, dtype, device));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype, Device device) {
  return full({}, value, dtype, device);
}

Tensor Tensor::arange(std::int64_t n, DType dtype, Device device) {
  SHRINK_CHECK(n >= 0, "arange: n must be >= 0, got ", n);
  Tensor t = empty({n}, dtype, device);
  backend_for(device).arange(dtype, n, t.raw_data());
  return t;
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, DType dtype, Device device) {
  SHRINK_CHECK(dtype != DType::Int64, "randn: dtype must be floating point");
  Tensor t = empty(shape, dtype, device);
  const auto n = t.numel();
  const auto offset = gen.reserve(2 * static_cast<std::uint64_t>(n));  // Box-Muller uses 2 per value
  if (gen.fills()) backend_for(device).random_normal(dtype, n, 0.0, 1.0, gen.seed(), offset, t.raw_data());
  return t;
}

Tensor Tensor::uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype,
                       Device device) {
  SHRINK_CHECK(dtype != DType::Int64, "uniform: dtype must be floating point");
  SHRINK_CHECK(lo <= hi, "uniform: lo (", lo, ") must not exceed hi (", hi, ")");
  Tensor t = empty(shape, dtype, device);
  const auto n = t.numel();
  const auto offset = gen.reserve(static_cast<std::uint64_t>(n));
  if (gen.fills()) backend_for(device).random_uniform(dtype, n, lo, hi, gen.seed(), offset, t.raw_data());
  return t;
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  SHRINK_CHECK(static_cast<std::int64_t>(values.size()) == shrink::numel(shape),
               "from_vector: ", values.size(), " values cannot fill shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>(), device);
  backend_for(device).copy_from_host(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}
template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor Tensor::from_vector<double>(const std::vector<double>&, const Shape&, Device);
template Tensor Tensor::from_vector<std::int64_t>(const std::vector<std::int64_t>&, const Shape&,
                                                  Device);

void Tensor::check_defined(const char* what) const {
  SHRINK_CHECK(impl_ != nullptr, what, ": the tensor is undefined");
}

const Shape& Tensor::shape() const {
  check_defined("shape");
  return impl_->shape;
}

std::int64_t Tensor::size(std::int64_t axis) const {
  return shape()[normalize_axis("size", axis, dim())];
}

DType Tensor::dtype() const {
  check_defined("dtype");
  return impl_->dtype;
}

Device Tensor::device() const {
  check_defined("device");
  return impl_->storage->device();
}

void* Tensor::raw_data() const {
  check_defined("data");
  return impl_->storage->data();
}

template <class T>
T* Tensor::data() const {
  check_defined("data");
  SHRINK_CHECK(dtype() == dtype_of<T>(), "data: tensor is ", dtype_name(dtype()),
               ", asked for ", dtype_name(dtype_of<T>()));
  SHRINK_CHECK(device().is_cpu(), "data: tensor is on ", device().str(),
               "; move it with .to(Device::cpu()) first");
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template std::int64_t* Tensor::data<std::int64_t>() const;

template <class T>
std::vector<T> Tensor::to_vector() const {
  SHRINK_CHECK(dtype() == dtype_of<T>(), "to_vector: tensor is ", dtype_name(dtype()),
               ", asked for ", dtype_name(dtype_of<T>()));
  std::vector<T> out(static_cast<size_t>(numel()));
  backend_for(device()).copy_to_host(out.data(), raw_data(), nbytes());
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;

double Tensor::item() const {
  SHRINK_CHECK(numel() == 1, "item: tensor of shape ", shape_str(shape()),
               " has ", numel(), " elements, expected 1");
  switch (dtype()) {
    case DType::Float32: return to_vector<float>()[0];
    case DType::Float64: return to_vector<double>()[0];
    case DType::Int64: return static_cast<double>(to_vector<std::int64_t>()[0]);
  }
  return 0;
}

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  Tensor out = empty(shape(), dtype(), target);
  if (device().is_cpu()) {
    backend_for(target).copy_from_host(out.raw_data(), raw_data(), nbytes());
  } else if (target.is_cpu()) {
    backend_for(device()).copy_to_host(out.raw_data(), raw_data(), nbytes());
  } else {
    out = to(Device::cpu()).to(target);
  }
  if (needs_grad({this})) {
    const Device source = device();
    record(out, "to", {*this}, [source](const Tensor& g) { return std::vector<Tensor>{g.to(source)}; });
  }
  return out;
}

Tensor Tensor::to(DType target) const {
  if (dtype() == target) return *this;
  Tensor out = empty(shape(), target, device());
  backend_for(device()).cast(dtype(), target, numel(), raw_data(), out.raw_data());
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  backend_for(device()).copy(out.raw_data(), raw_data(), nbytes());
  return out;
}

void Tensor::copy_(const Tensor& src) {
  SHRINK_CHECK(src.shape() == shape() && src.dtype() == dtype(), "copy_: source ",
               shape_str(src.shape()), " ", dtype_name(src.dtype()), " does not match ",
               shape_str(shape()), " ", dtype_name(dtype()));
  Tensor moved = src.device() == device() ? src : src.detach().to(device());
  backend_for(device()).copy(raw_data(), moved.raw_data(), nbytes());
}

void Tensor::fill_(double value) {
  backend_for(device()).fill(dtype(), numel(), value, raw_data());
}

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }

Tensor& Tensor::requires_grad_(bool value) {
  check_defined("requires_grad_");
  SHRINK_CHECK(!value || dtype() != DType::Int64, "requires_grad_: int64 tensors have no gradient");
  impl_->requires_grad = value;
  return *this;
}

Tensor Tensor::grad() const {
  check_defined("grad");
  return Tensor(impl_->grad);
}

void Tensor::set_grad(const Tensor& g) {
  check_defined("set_grad");
  SHRINK_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient shape ",
               shape_str(g.shape()), " does not match tensor shape ", shape_str(shape()));
  impl_->grad = g.impl_ptr();
}

void Tensor::zero_grad() {
  if (impl_) impl_->grad.reset();
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  check_defined("grad_fn");
  return impl_->grad_fn;
}

Tensor Tensor::detach() const {
  check_defined("detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(impl);
}

void Tensor::backward() const {
  SHRINK_CHECK(numel() == 1, "backward: needs a one-element tensor (a loss), got shape ",
               shape_str(shape()), "; pass a seed gradient for other shapes");
  backward(full(shape(), 1.0, dtype(), device()));
}

void Tensor::backward(const Tensor& seed) const {
  SHRINK_CHECK(requires_grad(), "backward: the tensor does not require grad (no parameter "
               "with requires_grad contributed to it, or it was computed under no_grad)");
  SHRINK_CHECK(seed.shape() == shape(), "backward: seed shape ", shape_str(seed.shape()),
               " does not match tensor shape ", shape_str(shape()));
  run_backward(*this, seed);
}

Tensor reshape(const Tensor& x, Shape shape) {
  int infer = -1;
  std::int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      SHRINK_CHECK(infer < 0, "reshape: only one dimension may be -1, got ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      SHRINK_CHECK(shape[i] >= 0, "reshape: invalid target shape ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    SHRINK_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot reshape ",
                 shape_str(x.shape()), " into ", shape_str(shape));
    shape[infer] = x.numel() / known;
  }
  SHRINK_CHECK(numel(shape) == x.numel(), "reshape: cannot reshape ", shape_str(x.shape()),
               " (", x.numel(), " elements) into ", shape_str(shape), " (", numel(shape),
               " elements)");
  Tensor out = x.detach();
  out.impl()->shape = shape;
  if (needs_grad({&x})) {
    Shape in_shape = x.shape();
    record(out, "reshape", {x},
           [in_shape](const Tensor& g) { return std::vector<Tensor>{reshape(g, in_shape)}; });
  }
  return out;
}

}  // namespace shrink
