// Elementwise arithmetic with NumPy broadcasting, and the same with a scalar. The backward
// of a broadcast input sums its gradient back to the input's shape (sum_to).
// Rows in docs/gradients.md.
#pragma once
#include "../autograd/node.hpp"
#include "../kernels/broadcast.hpp"
#include "reduce.hpp"

namespace lowbit {

namespace detail {
// Scalars take the tensor's element type without taking part in deduction, so x * 2 works
// for a Tensor<float>.
template <class T>
struct nondeduced {
  using type = T;
};
template <class T>
using nondeduced_t = typename nondeduced<T>::type;

template <class T, class Op>
Tensor<T> binary_forward(const Tensor<T>& a, const Tensor<T>& b, const char* op, Op f) {
  const Shape os = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor<T> y = Tensor<T>::empty(os);
  kernels::broadcast_binary(a.data(), a.shape(), b.data(), b.shape(), y.data(), os, f);
  return y;
}
template <class T, class Op>
Tensor<T> map(const Tensor<T>& x, Op f) {
  Tensor<T> y = Tensor<T>::empty(x.shape());
  const T* px = x.data();
  T* py = y.data();
  const int64_t n = x.numel();
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) py[i] = f(px[i]);
  return y;
}
template <class T, class Op>
Tensor<T> zip(const Tensor<T>& a, const Tensor<T>& b, Op f) {  // same shape, no broadcasting
  Tensor<T> y = Tensor<T>::empty(a.shape());
  const int64_t n = a.numel();
  const T *pa = a.data(), *pb = b.data();
  T* py = y.data();
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) py[i] = f(pa[i], pb[i]);
  return y;
}
}  // namespace detail

// y = a + b.  dL/da = sum_to(g, a), dL/db = sum_to(g, b).
template <class T>
Tensor<T> add(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> y = detail::binary_forward(a, b, "add", [](T u, T v) { return u + v; });
  if (autograd::needs_grad({&a, &b}))
    autograd::record(y, "add", {&a, &b}, [as = a.shape(), bs = b.shape()](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{sum_to(g, as), sum_to(g, bs)};
    });
  return y;
}

// y = a - b.  dL/da = sum_to(g, a), dL/db = -sum_to(g, b).
template <class T>
Tensor<T> sub(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> y = detail::binary_forward(a, b, "sub", [](T u, T v) { return u - v; });
  if (autograd::needs_grad({&a, &b}))
    autograd::record(y, "sub", {&a, &b}, [as = a.shape(), bs = b.shape()](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{sum_to(g, as), detail::map(sum_to(g, bs), [](T v) { return -v; })};
    });
  return y;
}

// y = a * b.  dL/da = sum_to(g * b, a), dL/db = sum_to(g * a, b).
template <class T>
Tensor<T> mul(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> y = detail::binary_forward(a, b, "mul", [](T u, T v) { return u * v; });
  if (autograd::needs_grad({&a, &b})) {
    const bool ga = a.requires_grad(), gb = b.requires_grad();
    autograd::record(y, "mul", {&a, &b},
                     [ad = gb ? a.detach() : Tensor<T>(), bd = ga ? b.detach() : Tensor<T>(),
                      as = a.shape(), bs = b.shape()](const Tensor<T>& g) {
                       auto times = [](T u, T v) { return u * v; };
                       Tensor<T> da, db;
                       if (bd.defined()) da = sum_to(detail::binary_forward(g, bd, "mul", times), as);
                       if (ad.defined()) db = sum_to(detail::binary_forward(g, ad, "mul", times), bs);
                       return std::vector<Tensor<T>>{da, db};
                     });
  }
  return y;
}

// y = a / b.  dL/da = sum_to(g / b, a), dL/db = sum_to(-g * y / b, b).
template <class T>
Tensor<T> div(const Tensor<T>& a, const Tensor<T>& b) {
  Tensor<T> y = detail::binary_forward(a, b, "div", [](T u, T v) { return u / v; });
  if (autograd::needs_grad({&a, &b})) {
    autograd::record(y, "div", {&a, &b},
                     [bd = b.detach(), yd = y.detach(), as = a.shape(), bs = b.shape(),
                      ga = a.requires_grad(), gb = b.requires_grad()](const Tensor<T>& g) {
                       Tensor<T> da, db;
                       if (ga) da = sum_to(detail::binary_forward(g, bd, "div", [](T u, T v) { return u / v; }), as);
                       if (gb) {
                         Tensor<T> gy = detail::zip(g, yd, [](T u, T v) { return -u * v; });
                         db = sum_to(detail::binary_forward(gy, bd, "div", [](T u, T v) { return u / v; }), bs);
                       }
                       return std::vector<Tensor<T>>{da, db};
                     });
  }
  return y;
}

// y = x + s.  dL/dx = g.
template <class T>
Tensor<T> add(const Tensor<T>& x, detail::nondeduced_t<T> s) {
  Tensor<T> y = detail::map(x, [s](T v) { return v + s; });
  if (autograd::needs_grad({&x}))
    autograd::record(y, "add_scalar", {&x}, [](const Tensor<T>& g) { return std::vector<Tensor<T>>{g}; });
  return y;
}

// y = x * s.  dL/dx = s g.
template <class T>
Tensor<T> mul(const Tensor<T>& x, detail::nondeduced_t<T> s) {
  Tensor<T> y = detail::map(x, [s](T v) { return v * s; });
  if (autograd::needs_grad({&x}))
    autograd::record(y, "mul_scalar", {&x}, [s](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{detail::map(g, [s](T v) { return v * s; })};
    });
  return y;
}

// y = s / x.  dL/dx = -s g / x^2.
template <class T>
Tensor<T> rdiv(detail::nondeduced_t<T> s, const Tensor<T>& x) {
  Tensor<T> y = detail::map(x, [s](T v) { return s / v; });
  if (autograd::needs_grad({&x}))
    autograd::record(y, "rdiv_scalar", {&x}, [s, xd = x.detach()](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{detail::zip(g, xd, [s](T u, T v) { return -s * u / (v * v); })};
    });
  return y;
}

template <class T> Tensor<T> operator+(const Tensor<T>& a, const Tensor<T>& b) { return add(a, b); }
template <class T> Tensor<T> operator-(const Tensor<T>& a, const Tensor<T>& b) { return sub(a, b); }
template <class T> Tensor<T> operator*(const Tensor<T>& a, const Tensor<T>& b) { return mul(a, b); }
template <class T> Tensor<T> operator/(const Tensor<T>& a, const Tensor<T>& b) { return div(a, b); }
template <class T> Tensor<T> operator+(const Tensor<T>& x, detail::nondeduced_t<T> s) { return add(x, s); }
template <class T> Tensor<T> operator+(detail::nondeduced_t<T> s, const Tensor<T>& x) { return add(x, s); }
template <class T> Tensor<T> operator-(const Tensor<T>& x, detail::nondeduced_t<T> s) { return add(x, -s); }
template <class T> Tensor<T> operator-(detail::nondeduced_t<T> s, const Tensor<T>& x) { return add(mul(x, T(-1)), s); }
template <class T> Tensor<T> operator*(const Tensor<T>& x, detail::nondeduced_t<T> s) { return mul(x, s); }
template <class T> Tensor<T> operator*(detail::nondeduced_t<T> s, const Tensor<T>& x) { return mul(x, s); }
template <class T> Tensor<T> operator/(const Tensor<T>& x, detail::nondeduced_t<T> s) { return mul(x, T(1) / s); }
template <class T> Tensor<T> operator/(detail::nondeduced_t<T> s, const Tensor<T>& x) { return rdiv(s, x); }
template <class T> Tensor<T> operator-(const Tensor<T>& x) { return mul(x, T(-1)); }

}  // namespace lowbit
