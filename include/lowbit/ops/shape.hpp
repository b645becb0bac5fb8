// Shape ops. reshape and slice are views (they share storage); permute, transpose and flip
// copy so that every tensor stays contiguous. Rows in docs/gradients.md.
#pragma once
#include <numeric>
#include <vector>

#include "../autograd/node.hpp"
#include "../kernels/broadcast.hpp"

namespace lowbit {

// View with a new shape of the same element count; one dimension may be -1 (inferred).
// Gradient: the output gradient reshaped back.
template <class T>
Tensor<T> reshape(const Tensor<T>& x, Shape shape) {
  int64_t known = 1, infer = -1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == -1) {
      LOWBIT_CHECK(infer < 0, "reshape: more than one -1 in target shape ", shape_str(shape));
      infer = static_cast<int64_t>(d);
    } else {
      LOWBIT_CHECK(shape[d] >= 0, "reshape: negative dimension in target shape ", shape_str(shape));
      known *= shape[d];
    }
  }
  if (infer >= 0) {
    LOWBIT_CHECK(known > 0 && x.numel() % known == 0, "reshape: cannot reshape ",
                 shape_str(x.shape()), " (", x.numel(), " elements) to ", shape_str(shape));
    shape[static_cast<size_t>(infer)] = x.numel() / known;
  }
  LOWBIT_CHECK(numel_of(shape) == x.numel(), "reshape: cannot reshape ", shape_str(x.shape()), " (",
               x.numel(), " elements) to ", shape_str(shape), " (", numel_of(shape), " elements)");
  Tensor<T> y = x.view_unchecked(shape, 0);
  if (autograd::needs_grad({&x}))
    autograd::record(y, "reshape", {&x}, [in_shape = x.shape()](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{g.view_unchecked(in_shape, 0)};
    });
  return y;
}

// Rows [begin, end) of the first dimension, as a view.
// Gradient: zeros of the input's shape with the output gradient in those rows.
template <class T>
Tensor<T> slice(const Tensor<T>& x, int64_t begin, int64_t end) {
  LOWBIT_CHECK(x.dim() >= 1, "slice: needs at least 1 dimension, got shape ", shape_str(x.shape()));
  const int64_t n = x.shape()[0];
  LOWBIT_CHECK(0 <= begin && begin <= end && end <= n, "slice: range [", begin, ", ", end,
               ") is not inside the first dimension of shape ", shape_str(x.shape()));
  Shape s = x.shape();
  s[0] = end - begin;
  const int64_t row = n ? x.numel() / n : 0;
  Tensor<T> y = x.view_unchecked(s, begin * row);
  if (autograd::needs_grad({&x}))
    autograd::record(y, "slice", {&x}, [in_shape = x.shape(), off = begin * row](const Tensor<T>& g) {
      Tensor<T> gx = Tensor<T>::zeros(in_shape);
      std::copy(g.data(), g.data() + g.numel(), gx.data() + off);
      return std::vector<Tensor<T>>{gx};
    });
  return y;
}

// Row i of the first dimension, with that dimension dropped (a view).
template <class T>
Tensor<T> select(const Tensor<T>& x, int64_t i) {
  LOWBIT_CHECK(x.dim() >= 1 && i >= 0 && i < x.shape()[0], "select: index ", i,
               " is out of range for shape ", shape_str(x.shape()));
  Shape s(x.shape().begin() + 1, x.shape().end());
  return reshape(slice(x, i, i + 1), s);
}

namespace detail {
template <class T>
Tensor<T> permute_copy(const Tensor<T>& x, const std::vector<int64_t>& dims) {
  const Shape& is = x.shape();
  Shape os(dims.size()), src_stride(dims.size());
  const Shape ist = strides_of(is);
  for (size_t d = 0; d < dims.size(); ++d) {
    os[d] = is[static_cast<size_t>(dims[d])];
    src_stride[d] = ist[static_cast<size_t>(dims[d])];
  }
  Tensor<T> y = Tensor<T>::empty(os);
  const int64_t n = y.numel();
  if (n == 0) return y;
  if (os.empty()) {
    y.data()[0] = x.data()[0];
    return y;
  }
  const int64_t inner = os.back(), is_inner = src_stride.back(), rows = n / inner;
  const T* px = x.data();
  T* py = y.data();
#pragma omp parallel for if (n > kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const T* src = px + kernels::row_offset(r, os, src_stride);
    T* dst = py + r * inner;
    for (int64_t j = 0; j < inner; ++j) dst[j] = src[j * is_inner];
  }
  return y;
}
}  // namespace detail

// y has dimension d of y = dimension dims[d] of x (a copy).
// Gradient: the output gradient permuted by the inverse permutation.
template <class T>
Tensor<T> permute(const Tensor<T>& x, std::vector<int64_t> dims) {
  const int64_t nd = x.dim();
  LOWBIT_CHECK(static_cast<int64_t>(dims.size()) == nd, "permute: ", dims.size(),
               " dims given for a tensor of shape ", shape_str(x.shape()));
  std::vector<bool> used(static_cast<size_t>(nd), false);
  for (auto& d : dims) {
    d = normalize_axis(d, nd, "permute");
    LOWBIT_CHECK(!used[static_cast<size_t>(d)], "permute: dimension ", d, " repeated (shape ",
                 shape_str(x.shape()), ")");
    used[static_cast<size_t>(d)] = true;
  }
  Tensor<T> y = detail::permute_copy(x, dims);
  if (autograd::needs_grad({&x})) {
    std::vector<int64_t> inv(dims.size());
    for (size_t d = 0; d < dims.size(); ++d) inv[static_cast<size_t>(dims[d])] = static_cast<int64_t>(d);
    autograd::record(y, "permute", {&x}, [inv](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{detail::permute_copy(g, inv)};
    });
  }
  return y;
}

// Swaps two dimensions (a copy).
template <class T>
Tensor<T> transpose(const Tensor<T>& x, int64_t d0, int64_t d1) {
  std::vector<int64_t> dims(static_cast<size_t>(x.dim()));
  std::iota(dims.begin(), dims.end(), int64_t(0));
  d0 = normalize_axis(d0, x.dim(), "transpose");
  d1 = normalize_axis(d1, x.dim(), "transpose");
  std::swap(dims[static_cast<size_t>(d0)], dims[static_cast<size_t>(d1)]);
  return permute(x, dims);
}

namespace detail {
// y[o, i, r] = x[o, n - 1 - i, r] with x seen as [outer, n, inner] around dimension `dim`.
template <class T>
Tensor<T> flip_copy(const Tensor<T>& x, int64_t dim) {
  const Shape& s = x.shape();
  const int64_t n = s[static_cast<size_t>(dim)];
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= s[static_cast<size_t>(d)];
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= s[static_cast<size_t>(d)];
  Tensor<T> y = Tensor<T>::empty(s);
  const T* px = x.data();
  T* py = y.data();
#pragma omp parallel for if (x.numel() > kParallelGrain)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < n; ++i) {
      const T* src = px + (o * n + (n - 1 - i)) * inner;
      std::copy(src, src + inner, py + (o * n + i) * inner);
    }
  return y;
}
}  // namespace detail

// Reverses the order along one dimension (a copy); flip(x, 3) mirrors an NCHW image batch
// left-right, as test-time augmentation does. Gradient: the output gradient flipped back
// (a flip is its own inverse).
template <class T>
Tensor<T> flip(const Tensor<T>& x, int64_t dim) {
  dim = normalize_axis(dim, x.dim(), "flip");
  Tensor<T> y = detail::flip_copy(x, dim);
  if (autograd::needs_grad({&x}))
    autograd::record(y, "flip", {&x}, [dim](const Tensor<T>& g) {
      return std::vector<Tensor<T>>{detail::flip_copy(g, dim)};
    });
  return y;
}

}  // namespace lowbit
