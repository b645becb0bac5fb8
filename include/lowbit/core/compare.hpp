// Approximate comparison, type conversion and printing of tensors.
#pragma once
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>

#include "tensor.hpp"

namespace lowbit {

// Largest |a - b| over all elements; shapes must match.
template <class T>
double max_abs_diff(const Tensor<T>& a, const Tensor<T>& b) {
  LOWBIT_CHECK(a.shape() == b.shape(), "max_abs_diff: shapes ", shape_str(a.shape()), " and ",
               shape_str(b.shape()), " differ");
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    m = std::max(m, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
  return m;
}

// True when shapes match and |a - b| <= atol + rtol |b| everywhere (NumPy's rule; NaNs
// are never close).
template <class T>
bool allclose(const Tensor<T>& a, const Tensor<T>& b, double rtol = 1e-5, double atol = 1e-8) {
  if (a.shape() != b.shape()) return false;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data()[i], y = b.data()[i];
    if (!(std::abs(x - y) <= atol + rtol * std::abs(y))) return false;
  }
  return true;
}

// Element type conversion (a copy, outside the graph).
template <class U, class T>
Tensor<U> cast(const Tensor<T>& x) {
  Tensor<U> y = Tensor<U>::empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) y.data()[i] = static_cast<U>(x.data()[i]);
  return y;
}

namespace detail {
template <class T>
void print_rec(std::ostream& os, const T* p, const Shape& s, size_t d, int64_t stride_unit) {
  const int64_t n = s[d];
  const int64_t inner = stride_unit / (n ? n : 1);
  const int64_t edge = 3;  // elements shown at each end of a long dimension
  os << '[';
  for (int64_t i = 0; i < n; ++i) {
    if (n > 2 * edge && i == edge) {
      os << (d + 1 == s.size() ? "..., " : "...,\n ");
      i = n - edge - 1;
      continue;
    }
    if (d + 1 == s.size()) os << p[i];
    else print_rec(os, p + i * inner, s, d + 1, inner);
    if (i + 1 < n) os << (d + 1 == s.size() ? ", " : ",\n ");
  }
  os << ']';
}
}  // namespace detail

// tensor([[1, 2], [3, 4]], shape=[2, 2]) — long dimensions are elided in the middle.
template <class T>
std::ostream& operator<<(std::ostream& os, const Tensor<T>& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  os << "tensor(";
  if (t.dim() == 0) os << t.data()[0];
  else if (t.numel() == 0) os << "[]";
  else detail::print_rec(os, t.data(), t.shape(), 0, t.numel());
  os << ", shape=" << shape_str(t.shape());
  if (t.requires_grad()) os << ", requires_grad";
  return os << ')';
}

template <class T>
std::string to_string(const Tensor<T>& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

}  // namespace lowbit
