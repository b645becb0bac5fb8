// Reductions: sum, mean, max (with gradient), argmax, and the broadcasting helpers
// sum_to / expand_to that binary ops use in their backward. Rows in docs/gradients.md.
#pragma once
#include <algorithm>
#include <vector>

#include "../autograd/node.hpp"
#include "../kernels/broadcast.hpp"

namespace lowbit {

namespace detail {
// Flags the reduced axes; an empty axis list means "all axes".
inline std::vector<bool> axis_flags(const std::vector<int64_t>& axes, int64_t ndim, const char* op) {
  std::vector<bool> f(static_cast<size_t>(ndim), axes.empty());
  for (int64_t a : axes) {
    const int64_t d = normalize_axis(a, ndim, op);
    LOWBIT_CHECK(!f[static_cast<size_t>(d)] || axes.empty(), op, ": axis ", a, " given twice");
    f[static_cast<size_t>(d)] = true;
  }
  return f;
}
}  // namespace detail

// Broadcasts g to `shape` (the inverse of sum_to); not recorded, used inside backward closures.
template <class T>
Tensor<T> expand_to(const Tensor<T>& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  broadcast_shapes(g.shape(), shape, "expand_to");
  Tensor<T> out = Tensor<T>::empty(shape);
  const T zero = T(0);
  kernels::broadcast_binary(g.data(), g.shape(), &zero, Shape{}, out.data(), shape,
                            [](T a, T) { return a; });
  return out;
}

// Sums g (of a broadcast shape) down to `shape`: the gradient of broadcasting.
template <class T>
Tensor<T> sum_to(const Tensor<T>& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const Shape& gs = g.shape();
  LOWBIT_CHECK(gs.size() >= shape.size(), "sum_to: cannot reduce ", shape_str(gs), " to ",
               shape_str(shape));
  const size_t lead = gs.size() - shape.size();
  std::vector<bool> red(gs.size(), false);
  for (size_t d = 0; d < gs.size(); ++d)
    red[d] = d < lead || (shape[d - lead] == 1 && gs[d] != 1);
  Tensor<T> out = Tensor<T>::empty(shape);
  kernels::reduce_sum(g.data(), gs, red, out.data());
  return out;
}

// Sum over `axes` (all axes when empty). keepdim keeps reduced axes as size 1.
// Gradient: dL/dx = broadcast of dL/dy back over the reduced axes.
template <class T>
Tensor<T> sum(const Tensor<T>& x, const std::vector<int64_t>& axes = {}, bool keepdim = false) {
  const auto red = detail::axis_flags(axes, x.dim(), "sum");
  const Shape keep_shape = kernels::reduced_shape(x.shape(), red, true);
  Tensor<T> y = Tensor<T>::empty(kernels::reduced_shape(x.shape(), red, keepdim));
  kernels::reduce_sum(x.data(), x.shape(), red, y.data());
  if (autograd::needs_grad({&x})) {
    autograd::record(y, "sum", {&x}, [keep_shape, in_shape = x.shape()](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{expand_to(g.view_unchecked(keep_shape, 0), in_shape)};
    });
  }
  return y;
}

// Mean over `axes`. Gradient: dL/dx = broadcast(dL/dy) / (number of reduced elements).
template <class T>
Tensor<T> mean(const Tensor<T>& x, const std::vector<int64_t>& axes = {}, bool keepdim = false) {
  const auto red = detail::axis_flags(axes, x.dim(), "mean");
  int64_t count = 1;
  for (size_t d = 0; d < red.size(); ++d)
    if (red[d]) count *= x.shape()[d];
  LOWBIT_CHECK(count > 0, "mean: reducing over an empty axis of shape ", shape_str(x.shape()));
  const Shape keep_shape = kernels::reduced_shape(x.shape(), red, true);
  Tensor<T> y = Tensor<T>::empty(kernels::reduced_shape(x.shape(), red, keepdim));
  kernels::reduce_sum(x.data(), x.shape(), red, y.data());
  const T inv = T(1) / static_cast<T>(count);
  for (int64_t i = 0; i < y.numel(); ++i) y.data()[i] *= inv;
  if (autograd::needs_grad({&x})) {
    autograd::record(y, "mean", {&x}, [keep_shape, in_shape = x.shape(), inv](const Tensor<T>& g) {
      Tensor<T> gx = expand_to(g.view_unchecked(keep_shape, 0), in_shape);
      if (gx.shares_storage_with(g)) gx = gx.clone();
      for (int64_t i = 0; i < gx.numel(); ++i) gx.data()[i] *= inv;
      return std::vector<Tensor<T>>{gx};
    });
  }
  return y;
}

// Max over `axes`. Gradient: dL/dy goes to the first maximal element (row-major order) of
// each reduced group; the others get 0 (ties are not split, unlike PyTorch's amax).
template <class T>
Tensor<T> max(const Tensor<T>& x, const std::vector<int64_t>& axes = {}, bool keepdim = false) {
  const auto red = detail::axis_flags(axes, x.dim(), "max");
  LOWBIT_CHECK(x.numel() > 0, "max: empty tensor of shape ", shape_str(x.shape()));
  Tensor<T> y = Tensor<T>::empty(kernels::reduced_shape(x.shape(), red, keepdim));
  std::vector<int64_t> arg(static_cast<size_t>(y.numel()));
  kernels::reduce_max(x.data(), x.shape(), red, y.data(), arg.data());
  if (autograd::needs_grad({&x})) {
    autograd::record(y, "max", {&x}, [arg, in_shape = x.shape()](const Tensor<T>& g) {
      Tensor<T> gx = Tensor<T>::zeros(in_shape);
      for (size_t o = 0; o < arg.size(); ++o) gx.data()[arg[o]] += g.data()[o];
      return std::vector<Tensor<T>>{gx};
    });
  }
  return y;
}

// Index of the first maximum along one axis (not differentiable).
template <class T>
Tensor<int64_t> argmax(const Tensor<T>& x, int64_t axis, bool keepdim = false) {
  const int64_t d = normalize_axis(axis, x.dim(), "argmax");
  LOWBIT_CHECK(x.shape()[d] > 0, "argmax: axis ", axis, " of shape ", shape_str(x.shape()), " is empty");
  std::vector<bool> red(x.shape().size(), false);
  red[static_cast<size_t>(d)] = true;
  const Shape out_shape = kernels::reduced_shape(x.shape(), red, keepdim);
  const int64_t n = numel_of(out_shape);
  std::vector<T> val(static_cast<size_t>(n));
  Tensor<int64_t> idx = Tensor<int64_t>::empty(out_shape);
  kernels::reduce_max(x.data(), x.shape(), red, val.data(), idx.data());
  const int64_t stride = strides_of(x.shape())[d], len = x.shape()[d];
  for (int64_t i = 0; i < n; ++i) idx.data()[i] = (idx.data()[i] / stride) % len;
  return idx;
}

}  // namespace lowbit
