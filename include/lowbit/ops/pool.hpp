// Pooling ops on [N, C, H, W]. Rows in docs/gradients.md.
#pragma once
#include <vector>

#include "../autograd/node.hpp"
#include "../kernels/pool.hpp"
#include "reduce.hpp"

namespace lowbit {

namespace detail {
template <class T>
kernels::PoolShape pool_shape(const Tensor<T>& x, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                              const char* op) {
  LOWBIT_CHECK(x.dim() == 4, op, ": input must be [N, C, H, W], got ", shape_str(x.shape()));
  if (sh <= 0) sh = kh;  // PyTorch's default stride is the kernel size
  if (sw <= 0) sw = kw;
  LOWBIT_CHECK(kh > 0 && kw > 0 && kh <= x.shape()[2] && kw <= x.shape()[3], op, ": kernel ", kh, "x",
               kw, " does not fit input ", shape_str(x.shape()));
  return {x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3], kh, kw, sh, sw};
}
}  // namespace detail

// Max over each kh x kw window (stride defaults to the kernel size, no padding).
// Gradient: dy goes to the first maximum of its window; overlapping windows add.
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, int64_t kh, int64_t kw, int64_t sh = 0, int64_t sw = 0) {
  const auto s = detail::pool_shape(x, kh, kw, sh, sw, "max_pool2d");
  Tensor<T> y = Tensor<T>::empty({s.N, s.C, s.OH(), s.OW()});
  auto arg = std::make_shared<std::vector<int32_t>>(static_cast<size_t>(y.numel()));
  kernels::max_pool_forward(s, x.data(), y.data(), arg->data());
  if (autograd::needs_grad({&x}))
    autograd::record(y, "max_pool2d", {&x}, [s, arg](const Tensor<T>& g) {
      Tensor<T> dx = Tensor<T>::zeros({s.N, s.C, s.H, s.W});
      kernels::max_pool_backward(s, g.data(), arg->data(), dx.data());
      return std::vector<Tensor<T>>{dx};
    });
  return y;
}
template <class T>
Tensor<T> max_pool2d(const Tensor<T>& x, int64_t kernel) { return max_pool2d(x, kernel, kernel, kernel, kernel); }

// Mean over each kh x kw window.  Gradient: dy / (kh kw) to every element of its window.
template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, int64_t kh, int64_t kw, int64_t sh = 0, int64_t sw = 0) {
  const auto s = detail::pool_shape(x, kh, kw, sh, sw, "avg_pool2d");
  Tensor<T> y = Tensor<T>::empty({s.N, s.C, s.OH(), s.OW()});
  kernels::avg_pool_forward(s, x.data(), y.data());
  if (autograd::needs_grad({&x}))
    autograd::record(y, "avg_pool2d", {&x}, [s](const Tensor<T>& g) {
      Tensor<T> dx = Tensor<T>::zeros({s.N, s.C, s.H, s.W});
      kernels::avg_pool_backward(s, g.data(), dx.data());
      return std::vector<Tensor<T>>{dx};
    });
  return y;
}
template <class T>
Tensor<T> avg_pool2d(const Tensor<T>& x, int64_t kernel) { return avg_pool2d(x, kernel, kernel, kernel, kernel); }

// [N, C, H, W] -> [N, C], the mean of each plane (ResNet's head).
// Gradient: dy / (H W) to every element of the plane.
template <class T>
Tensor<T> global_avg_pool2d(const Tensor<T>& x) {
  LOWBIT_CHECK(x.dim() == 4, "global_avg_pool2d: input must be [N, C, H, W], got ", shape_str(x.shape()));
  return mean(x, {2, 3});
}

}  // namespace lowbit
