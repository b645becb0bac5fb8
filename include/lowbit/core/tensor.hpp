// Tensor<T>: an N-d, contiguous, row-major array on 64-byte-aligned shared storage, plus the
// autograd fields (requires_grad, grad, grad_fn). Copying a Tensor copies a handle: both
// refer to the same data, as in PyTorch. Views (reshape, slice along the first dimension)
// share storage; permute/transpose copy, so every tensor stays contiguous and kernels can
// take a raw pointer.
//
// The math lives in free functions (ops/), e.g. lowbit::add(a, b) or a + b, lowbit::sum(x,
// {1}, true); this class only holds data and graph bookkeeping.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../autograd/grad_mode.hpp"
#include "error.hpp"
#include "random.hpp"
#include "shape.hpp"
#include "storage.hpp"

namespace lowbit {

template <class T>
class Tensor;

namespace autograd {
template <class T>
struct Node;
}

namespace detail {
template <class T>
struct TensorImpl {
  std::shared_ptr<Storage<T>> storage;
  int64_t offset = 0;  // in elements; non-zero only for slices
  Shape shape;
  bool requires_grad = false;
  std::shared_ptr<Tensor<T>> grad;                // accumulated by backward() on leaves
  std::shared_ptr<autograd::Node<T>> grad_fn;     // null for leaves and constants
};
}  // namespace detail

template <class T>
class Tensor {
  static_assert(std::is_arithmetic<T>::value, "Tensor<T> needs an arithmetic element type");

 public:
  using value_type = T;

  // An undefined tensor (no storage); defined() is false.
  Tensor() = default;

  // ---- factories -------------------------------------------------------------------
  // Uninitialized memory: only for outputs a kernel overwrites completely.
  static Tensor empty(const Shape& shape) {
    check_shape(shape, "Tensor::empty");
    Tensor t;
    t.impl_ = std::make_shared<detail::TensorImpl<T>>();
    t.impl_->storage = std::make_shared<Storage<T>>(numel_of(shape));
    t.impl_->shape = shape;
    return t;
  }
  static Tensor zeros(const Shape& shape) { return full(shape, T(0)); }
  static Tensor ones(const Shape& shape) { return full(shape, T(1)); }
  static Tensor full(const Shape& shape, T value) {
    Tensor t = empty(shape);
    T* p = t.data();
    const int64_t n = t.numel();
    for (int64_t i = 0; i < n; ++i) p[i] = value;
    return t;
  }
  static Tensor scalar(T value) { return full({}, value); }
  // 1-d tensor start, start+step, ... < stop (like numpy.arange).
  static Tensor arange(T start, T stop, T step = T(1)) {
    LOWBIT_CHECK(step != T(0), "Tensor::arange: step must be non-zero");
    const double span = (static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step);
    const int64_t n = span > 0 ? static_cast<int64_t>(std::ceil(span)) : 0;
    Tensor t = empty({n});
    for (int64_t i = 0; i < n; ++i) t.data()[i] = static_cast<T>(start + step * static_cast<T>(i));
    return t;
  }
  static Tensor arange(T stop) { return arange(T(0), stop, T(1)); }
  static Tensor randn(const Shape& shape, Generator& gen, double mean = 0.0, double stddev = 1.0) {
    Tensor t = empty(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(gen.normal(mean, stddev));
    return t;
  }
  static Tensor uniform(const Shape& shape, Generator& gen, double lo = 0.0, double hi = 1.0) {
    Tensor t = empty(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<T>(gen.uniform(lo, hi));
    return t;
  }
  // Row-major values; their count must match the shape.
  static Tensor from_vector(const Shape& shape, const std::vector<T>& values) {
    Tensor t = empty(shape);
    LOWBIT_CHECK(static_cast<int64_t>(values.size()) == t.numel(), "Tensor::from_vector: shape ",
                 shape_str(shape), " needs ", t.numel(), " values, got ", values.size());
    if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * sizeof(T));
    return t;
  }
  Tensor(const Shape& shape, std::initializer_list<T> values)
      : Tensor(from_vector(shape, std::vector<T>(values))) {}

  // ---- shape and data --------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const { return impl().shape[normalize_axis(d, dim(), "Tensor::size")]; }
  int64_t numel() const { return numel_of(impl().shape); }
  T* data() { return impl().storage->data() + impl().offset; }
  const T* data() const { return impl().storage->data() + impl().offset; }

  // Bounds-checked element access by multi-index, for tests and small code.
  T& at(std::initializer_list<int64_t> idx) { return data()[linear_index(idx)]; }
  T at(std::initializer_list<int64_t> idx) const { return data()[linear_index(idx)]; }
  T item() const {
    LOWBIT_CHECK(numel() == 1, "Tensor::item: needs exactly one element, tensor has shape ",
                 shape_str(shape()));
    return data()[0];
  }
  std::vector<T> to_vector() const { return std::vector<T>(data(), data() + numel()); }

  // A new tensor with its own copy of the data, outside any graph.
  Tensor clone() const {
    Tensor t = empty(shape());
    if (numel()) std::memcpy(t.data(), data(), static_cast<size_t>(numel()) * sizeof(T));
    return t;
  }
  // Same data, cut from the graph: gradients do not flow through the result.
  Tensor detach() const {
    Tensor t;
    t.impl_ = std::make_shared<detail::TensorImpl<T>>();
    t.impl_->storage = impl().storage;
    t.impl_->offset = impl().offset;
    t.impl_->shape = impl().shape;
    return t;
  }
  // True when both handles refer to the same storage (views included).
  bool shares_storage_with(const Tensor& o) const {
    return defined() && o.defined() && impl_->storage == o.impl_->storage;
  }

  // ---- in-place, outside autograd ----------------------------------------------------
  // These change data without recording anything, so they are refused on tensors that
  // take part in a graph while grad mode is on (the saved values of the graph would go
  // stale silently). Optimizers use them under NoGradGuard.
  Tensor& fill_(T value) {
    check_inplace("fill_");
    T* p = data();
    for (int64_t i = 0; i < numel(); ++i) p[i] = value;
    return *this;
  }
  Tensor& copy_(const Tensor& src) {
    check_inplace("copy_");
    LOWBIT_CHECK(src.shape() == shape(), "copy_: source shape ", shape_str(src.shape()),
                 " does not match destination shape ", shape_str(shape()));
    if (numel()) std::memmove(data(), src.data(), static_cast<size_t>(numel()) * sizeof(T));
    return *this;
  }

  // ---- autograd ------------------------------------------------------------------------
  bool requires_grad() const { return defined() && impl_->requires_grad; }
  // Marks a leaf as a parameter whose gradient backward() accumulates.
  Tensor& set_requires_grad(bool on = true) {
    LOWBIT_CHECK(!impl().grad_fn, "set_requires_grad: only leaf tensors can change requires_grad; "
                 "this tensor of shape ", shape_str(shape()), " is the output of an op (use detach())");
    impl().requires_grad = on;
    return *this;
  }
  bool is_leaf() const { return !impl().grad_fn; }
  // The accumulated gradient of a leaf; undefined until a backward() reaches it.
  Tensor grad() const { return impl().grad ? *impl().grad : Tensor(); }
  void set_grad(const Tensor& g) {
    LOWBIT_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient shape ",
                 shape_str(g.shape()), " does not match tensor shape ", shape_str(shape()));
    impl().grad = g.defined() ? std::make_shared<Tensor>(g) : nullptr;
  }
  // Sets the gradient to zero (keeping its buffer) or drops it.
  void zero_grad(bool set_to_none = false) {
    if (!impl().grad) return;
    if (set_to_none) impl().grad.reset();
    else impl().grad->fill_unchecked(T(0));
  }
  const std::shared_ptr<autograd::Node<T>>& grad_fn() const { return impl().grad_fn; }

  // Defined in autograd/backward.hpp: from a scalar, or with a seed gradient of this
  // tensor's shape for a non-scalar. retain_graph keeps saved values for a second call.
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false) const;

  // Internal: the implementation object, for autograd and ops.
  detail::TensorImpl<T>& impl() const {
    LOWBIT_CHECK(impl_ != nullptr, "Tensor: operation on an undefined tensor");
    return *impl_;
  }
  const std::shared_ptr<detail::TensorImpl<T>>& impl_ptr() const { return impl_; }
  static Tensor from_impl(std::shared_ptr<detail::TensorImpl<T>> p) {
    Tensor t;
    t.impl_ = std::move(p);
    return t;
  }
  // Internal: a view sharing storage (reshape, slice). Not recorded in the graph here.
  Tensor view_unchecked(const Shape& shape, int64_t extra_offset) const {
    Tensor t;
    t.impl_ = std::make_shared<detail::TensorImpl<T>>();
    t.impl_->storage = impl().storage;
    t.impl_->offset = impl().offset + extra_offset;
    t.impl_->shape = shape;
    return t;
  }
  void fill_unchecked(T value) {
    T* p = data();
    for (int64_t i = 0; i < numel(); ++i) p[i] = value;
  }

 private:
  int64_t linear_index(std::initializer_list<int64_t> idx) const {
    LOWBIT_CHECK(static_cast<int64_t>(idx.size()) == dim(), "Tensor::at: got ", idx.size(),
                 " indices for a tensor of shape ", shape_str(shape()));
    int64_t lin = 0, d = 0;
    for (int64_t i : idx) {
      const int64_t n = shape()[d];
      LOWBIT_CHECK(i >= 0 && i < n, "Tensor::at: index ", i, " out of range for dimension ", d,
                   " of shape ", shape_str(shape()));
      lin = lin * n + i;
      ++d;
    }
    return lin;
  }
  void check_inplace(const char* op) const;  // defined below the class

  std::shared_ptr<detail::TensorImpl<T>> impl_;
};

template <class T>
void Tensor<T>::check_inplace(const char* op) const {
  LOWBIT_CHECK(!is_grad_enabled() || (!impl().requires_grad && !impl().grad_fn), op,
               ": in-place change of a tensor of shape ", shape_str(shape()),
               " that takes part in autograd (requires_grad or op output); wrap it in "
               "lowbit::NoGradGuard or work on a detach()ed copy");
}

}  // namespace lowbit

// Tensor<T>::backward() is defined there; included here so that every includer of
// tensor.hpp gets it. autograd/node.hpp (which backward.hpp includes first) includes
// tensor.hpp only at its end, so any of the three can be the first header of a translation
// unit.
#include "../autograd/backward.hpp"
