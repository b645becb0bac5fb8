// Raw loops behind broadcasting elementwise ops and axis reductions. Shapes are row-major
// and contiguous; broadcasting reads inputs through strides that are 0 on broadcast
// dimensions (core/shape.hpp). Each loop walks rows of the innermost dimension so the
// multi-index arithmetic costs O(ndim) per row, not per element.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../core/shape.hpp"
#include "parallel.hpp"

namespace lowbit {
namespace kernels {

// Offset of row `r` (a multi-index over all but the last dim of `shape`) under `strides`.
inline int64_t row_offset(int64_t r, const Shape& shape, const Shape& strides) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 2; d >= 0; --d) {
    const int64_t i = r % shape[d];
    r /= shape[d];
    off += i * strides[d];
  }
  return off;
}

// out[i] = op(a[...], b[...]) with NumPy broadcasting to shape `os`.
template <class T, class Op>
void broadcast_binary(const T* a, const Shape& as, const T* b, const Shape& bs, T* out,
                      const Shape& os, Op op) {
  const int64_t n = numel_of(os);
  if (n == 0) return;
  if (as == os && bs == os) {
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) out[i] = op(a[i], b[i]);
    return;
  }
  if (as == os && numel_of(bs) == 1) {
    const T bv = b[0];
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) out[i] = op(a[i], bv);
    return;
  }
  if (bs == os && numel_of(as) == 1) {
    const T av = a[0];
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) out[i] = op(av, b[i]);
    return;
  }
  if (os.empty()) {  // 0-d result of 0-d inputs
    out[0] = op(a[0], b[0]);
    return;
  }
  const Shape sa = broadcast_strides(as, os), sb = broadcast_strides(bs, os);
  const int64_t inner = os.back(), ia = sa.back(), ib = sb.back();
  const int64_t rows = n / inner;
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* pa = a + row_offset(r, os, sa);
    const T* pb = b + row_offset(r, os, sb);
    T* po = out + r * inner;
    for (int64_t j = 0; j < inner; ++j) po[j] = op(pa[j * ia], pb[j * ib]);
  }
}

// Output shape of reducing `in` over the axes flagged in `reduced`.
inline Shape reduced_shape(const Shape& in, const std::vector<bool>& reduced, bool keepdim) {
  Shape out;
  for (size_t d = 0; d < in.size(); ++d) {
    if (!reduced[d]) out.push_back(in[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

// Strides that map an input multi-index to the output (keepdim layout) linear index:
// 0 on reduced axes.
inline Shape reduce_out_strides(const Shape& in, const std::vector<bool>& reduced) {
  Shape keep(in.size());
  for (size_t d = 0; d < in.size(); ++d) keep[d] = reduced[d] ? 1 : in[d];
  Shape st = strides_of(keep);
  for (size_t d = 0; d < in.size(); ++d)
    if (reduced[d]) st[d] = 0;
  return st;
}

// out[o] = sum of x over the reduced axes. Accumulates in double so float sums of large
// tensors keep their precision.
template <class T>
void reduce_sum(const T* x, const Shape& in, const std::vector<bool>& reduced, T* out) {
  const Shape os = reduce_out_strides(in, reduced);
  const int64_t n_out = numel_of(reduced_shape(in, reduced, true));
  std::vector<double> acc(static_cast<size_t>(n_out), 0.0);
  const int64_t n = numel_of(in);
  if (in.empty()) {
    acc[0] = x[0];
  } else if (n > 0) {
    const int64_t inner = in.back(), io = os.back(), rows = n / inner;
    for (int64_t r = 0; r < rows; ++r) {
      const T* px = x + r * inner;
      double* pa = acc.data() + row_offset(r, in, os);
      if (io == 0) {
        double s = 0;
        for (int64_t j = 0; j < inner; ++j) s += px[j];
        pa[0] += s;
      } else {
        for (int64_t j = 0; j < inner; ++j) pa[j * io] += px[j];
      }
    }
  }
  for (int64_t i = 0; i < n_out; ++i) out[i] = static_cast<T>(acc[static_cast<size_t>(i)]);
}

// out[o] = max of x over the reduced axes; arg[o] = linear input index of the first
// maximum in row-major order. NaN wins (propagates), as in PyTorch.
template <class T>
void reduce_max(const T* x, const Shape& in, const std::vector<bool>& reduced, T* out,
                int64_t* arg) {
  const Shape os = reduce_out_strides(in, reduced);
  const int64_t n_out = numel_of(reduced_shape(in, reduced, true));
  for (int64_t i = 0; i < n_out; ++i) {
    out[i] = -std::numeric_limits<T>::infinity();
    arg[i] = -1;
  }
  const int64_t n = numel_of(in);
  if (in.empty()) {
    out[0] = x[0];
    arg[0] = 0;
    return;
  }
  const int64_t inner = n > 0 ? in.back() : 0, io = n > 0 ? os.back() : 0;
  const int64_t rows = inner > 0 ? n / inner : 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t base = row_offset(r, in, os);
    for (int64_t j = 0; j < inner; ++j) {
      const int64_t o = base + j * io;
      const T v = x[r * inner + j];
      const bool better = arg[o] < 0 || v > out[o] || (std::isnan(v) && !std::isnan(out[o]));
      if (better) {
        out[o] = v;
        arg[o] = r * inner + j;
      }
    }
  }
}

}  // namespace kernels
}  // namespace lowbit
