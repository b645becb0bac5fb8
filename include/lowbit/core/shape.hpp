// Shape arithmetic: element counts, row-major strides, axis normalization and NumPy
// broadcasting. Tensors in lowbit are always contiguous and row-major, so a shape alone
// determines the layout.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "error.hpp"

namespace lowbit {

inline int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

inline Shape strides_of(const Shape& s) {
  Shape st(s.size(), 1);
  for (int64_t i = static_cast<int64_t>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

inline void check_shape(const Shape& s, const char* op) {
  for (int64_t d : s)
    LOWBIT_CHECK(d >= 0, op, ": shape ", shape_str(s), " has a negative dimension");
}

// Python-style axis: -1 is the last axis. Throws naming the op when out of range.
inline int64_t normalize_axis(int64_t axis, int64_t ndim, const char* op) {
  LOWBIT_CHECK(axis >= -ndim && axis < ndim, op, ": axis ", axis, " is out of range for a ",
               ndim, "-d tensor (expected ", -ndim, " <= axis < ", ndim, ")");
  return axis < 0 ? axis + ndim : axis;
}

// NumPy broadcasting: align trailing dims; each pair must be equal or contain a 1.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    LOWBIT_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ",
                 shape_str(b), " cannot be broadcast (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Strides that read a tensor of shape `s` as if it had the (broadcast) shape `out`:
// broadcast dimensions get stride 0.
inline Shape broadcast_strides(const Shape& s, const Shape& out) {
  Shape st(out.size(), 0);
  const Shape own = strides_of(s);
  const size_t lead = out.size() - s.size();
  for (size_t i = 0; i < s.size(); ++i) st[lead + i] = s[i] == 1 ? 0 : own[i];
  return st;
}

}  // namespace lowbit
