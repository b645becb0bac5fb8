// Activations and flatten. relu and hardtanh follow PyTorch's subgradient conventions at
// their kinks, so results match torch bit for bit in the parity test. Rows in
// docs/gradients.md.
#pragma once
#include <algorithm>

#include "shape.hpp"
#include "unary.hpp"

namespace lowbit {

// y = max(x, 0).  dy/dx = 1 where x > 0, else 0 (0 at x = 0, as PyTorch).
template <class T>
Tensor<T> relu(const Tensor<T>& x) {
  Tensor<T> y = detail::map(x, [](T v) { return v > T(0) ? v : T(0); });
  // y > 0 exactly where x > 0, so the saved output is enough (no copy of x kept).
  if (autograd::needs_grad({&x}))
    autograd::record(y, "relu", {&x}, [yd = y.detach()](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{detail::zip(g, yd, [](T gv, T yv) { return yv > T(0) ? gv : T(0); })};
    });
  return y;
}

// y = min(max(x, lo), hi).  dy/dx = 1 where lo < x < hi, 0 elsewhere *including* the
// boundaries (PyTorch's hardtanh_backward). DoReFa-style activation clipping uses this.
template <class T>
Tensor<T> hardtanh(const Tensor<T>& x, detail::nondeduced_t<T> lo = T(-1), detail::nondeduced_t<T> hi = T(1)) {
  LOWBIT_CHECK(lo <= hi, "hardtanh: lower bound ", lo, " is above upper bound ", hi);
  Tensor<T> y = detail::map(x, [lo, hi](T v) { return std::min(std::max(v, lo), hi); });
  if (autograd::needs_grad({&x}))
    autograd::record(y, "hardtanh", {&x}, [xd = x.detach(), lo, hi](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{
          detail::zip(g, xd, [lo, hi](T gv, T xv) { return (xv > lo && xv < hi) ? gv : T(0); })};
    });
  return y;
}

// y = min(max(x, lo), hi).  dy/dx = 1 where lo <= x <= hi, 0 outside: PyTorch's clamp
// keeps the gradient *on* the boundaries (unlike hardtanh).
template <class T>
Tensor<T> clamp(const Tensor<T>& x, detail::nondeduced_t<T> lo, detail::nondeduced_t<T> hi) {
  LOWBIT_CHECK(lo <= hi, "clamp: lower bound ", lo, " is above upper bound ", hi);
  Tensor<T> y = detail::map(x, [lo, hi](T v) { return std::min(std::max(v, lo), hi); });
  if (autograd::needs_grad({&x}))
    autograd::record(y, "clamp", {&x}, [xd = x.detach(), lo, hi](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{
          detail::zip(g, xd, [lo, hi](T gv, T xv) { return (xv >= lo && xv <= hi) ? gv : T(0); })};
    });
  return y;
}

// y = max(a + b, 0) for same-shaped a, b: a residual join and its ReLU in one pass.
// dL/da = dL/db = g where y > 0, else 0.
template <class T>
Tensor<T> add_relu(const Tensor<T>& a, const Tensor<T>& b) {
  LOWBIT_CHECK(a.shape() == b.shape(), "add_relu: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
               " differ (add_relu does not broadcast)");
  Tensor<T> y = detail::zip(a, b, [](T u, T v) { return u + v > T(0) ? u + v : T(0); });
  if (autograd::needs_grad({&a, &b}))
    autograd::record(y, "add_relu", {&a, &b}, [yd = y.detach()](const Tensor<T>& g) {
      Tensor<T> d = detail::zip(g, yd, [](T gv, T yv) { return yv > T(0) ? gv : T(0); });
      return std::vector<Tensor<T>>{d, d};
    });
  return y;
}

// [N, d1, d2, ...] -> [N, d1*d2*...], a view.  Gradient: reshape back.
template <class T>
Tensor<T> flatten(const Tensor<T>& x) {
  LOWBIT_CHECK(x.dim() >= 1, "flatten: needs a batch dimension, got shape ", shape_str(x.shape()));
  const int64_t n = x.shape()[0];
  return reshape(x, {n, n ? x.numel() / n : 0});
}

}  // namespace lowbit
