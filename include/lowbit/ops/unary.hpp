// Elementwise math functions. Each backward is the textbook derivative, computed from the
// saved input or (where cheaper) the saved output. Rows in docs/gradients.md.
#pragma once
#include <cmath>

#include "binary.hpp"

namespace lowbit {

namespace detail {
// Records a unary op whose gradient is g * dydx(x, y) elementwise.
template <class T, class D>
void record_unary(Tensor<T>& y, const Tensor<T>& x, const char* op, D dydx) {
  if (!autograd::needs_grad({&x})) return;
  autograd::record(y, op, {&x}, [xd = x.detach(), yd = y.detach(), dydx](const Tensor<T>& g) {
    Tensor<T> gx = Tensor<T>::empty(xd.shape());
    const T *pg = g.data(), *px = xd.data(), *py = yd.data();
    T* po = gx.data();
    const int64_t n = gx.numel();
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) po[i] = pg[i] * dydx(px[i], py[i]);
    return std::vector<Tensor<T>>{gx};
  });
}
}  // namespace detail

// y = -x.  dy/dx = -1.
template <class T>
Tensor<T> neg(const Tensor<T>& x) {
  Tensor<T> y = detail::map(x, [](T v) { return -v; });
  detail::record_unary(y, x, "neg", [](T, T) { return T(-1); });
  return y;
}

// y = exp(x).  dy/dx = y.
template <class T>
Tensor<T> exp(const Tensor<T>& x) {
  Tensor<T> y = detail::map(x, [](T v) { return std::exp(v); });
  detail::record_unary(y, x, "exp", [](T, T yv) { return yv; });
  return y;
}

// y = log(x).  dy/dx = 1 / x.
template <class T>
Tensor<T> log(const Tensor<T>& x) {
  Tensor<T> y = detail::map(x, [](T v) { return std::log(v); });
  detail::record_unary(y, x, "log", [](T xv, T) { return T(1) / xv; });
  return y;
}

// y = sqrt(x).  dy/dx = 1 / (2 y).
template <class T>
Tensor<T> sqrt(const Tensor<T>& x) {
  Tensor<T> y = detail::map(x, [](T v) { return std::sqrt(v); });
  detail::record_unary(y, x, "sqrt", [](T, T yv) { return T(0.5) / yv; });
  return y;
}

// y = tanh(x).  dy/dx = 1 - y^2.
template <class T>
Tensor<T> tanh(const Tensor<T>& x) {
  Tensor<T> y = detail::map(x, [](T v) { return std::tanh(v); });
  detail::record_unary(y, x, "tanh", [](T, T yv) { return T(1) - yv * yv; });
  return y;
}

// y = 1 / (1 + exp(-x)).  dy/dx = y (1 - y).
template <class T>
Tensor<T> sigmoid(const Tensor<T>& x) {
  Tensor<T> y = detail::map(x, [](T v) {
    // Two branches so that exp never overflows.
    return v >= 0 ? T(1) / (T(1) + std::exp(-v)) : std::exp(v) / (T(1) + std::exp(v));
  });
  detail::record_unary(y, x, "sigmoid", [](T, T yv) { return yv * (T(1) - yv); });
  return y;
}

// y = |x|.  dy/dx = sign(x), with sign(0) = 0 (the subgradient PyTorch uses).
template <class T>
Tensor<T> abs(const Tensor<T>& x) {
  Tensor<T> y = detail::map(x, [](T v) { return std::abs(v); });
  detail::record_unary(y, x, "abs", [](T xv, T) { return T((xv > 0) - (xv < 0)); });
  return y;
}

// y = x^p for a scalar exponent p.  dy/dx = p x^(p-1).
template <class T>
Tensor<T> pow(const Tensor<T>& x, detail::nondeduced_t<T> p) {
  Tensor<T> y = detail::map(x, [p](T v) { return std::pow(v, p); });
  detail::record_unary(y, x, "pow", [p](T xv, T) { return p == T(0) ? T(0) : p * std::pow(xv, p - T(1)); });
  return y;
}

// y = x^2.  dy/dx = 2x.
template <class T>
Tensor<T> square(const Tensor<T>& x) {
  Tensor<T> y = detail::map(x, [](T v) { return v * v; });
  detail::record_unary(y, x, "square", [](T xv, T) { return T(2) * xv; });
  return y;
}

}  // namespace lowbit
