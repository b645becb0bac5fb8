// Squared-error losses for regression (image super-resolution, examples/train_sr.cpp), each
// with a fused backward. Rows in docs/gradients.md.
//   squared_error(x, t, scale)  L = scale * sum_i (x_i - t_i)^2
//   mse_loss(x, t)              L = 1/numel * sum_i (x_i - t_i)^2   (PyTorch's MSELoss, mean)
// VDSR's objective (Kim et al. 2016, Sec. 3.1: 1/2 ||r - f(x)||^2, averaged over the batch
// as Caffe's EuclideanLoss does) is squared_error(x, t, 0.5 / N). The target is data: it
// must not require a gradient. The sum runs in double, so a large image's loss keeps its
// digits.
#pragma once
#include <cmath>

#include "../autograd/node.hpp"

namespace lowbit {

template <class T>
Tensor<T> squared_error(const Tensor<T>& x, const Tensor<T>& target, double scale) {
  LOWBIT_CHECK(x.shape() == target.shape(), "squared_error: input ", shape_str(x.shape()), " and target ",
               shape_str(target.shape()), " must have the same shape");
  LOWBIT_CHECK(!target.requires_grad(), "squared_error: the target requires a gradient; it must be data "
               "(compute it under NoGradGuard)");
  LOWBIT_CHECK(std::isfinite(scale), "squared_error: scale ", scale, " is not finite");
  const int64_t n = x.numel();
  const T* xp = x.data();
  const T* tp = target.data();
  double sum = 0;
#pragma omp parallel for reduction(+ : sum) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(xp[i]) - static_cast<double>(tp[i]);
    sum += d * d;
  }
  Tensor<T> y = Tensor<T>::scalar(static_cast<T>(scale * sum));
  if (autograd::needs_grad({&x}))
    autograd::record(y, "squared_error", {&x}, [x, target, scale](const Tensor<T>& g) {
      // dL/dx_i = 2 scale (x_i - t_i), times the incoming scalar gradient.
      Tensor<T> dx = Tensor<T>::empty(x.shape());
      const double k = 2.0 * scale * static_cast<double>(g.item());
      const int64_t m = x.numel();
      const T* a = x.data();
      const T* b = target.data();
      T* d = dx.data();
#pragma omp parallel for if (m > 65536)
      for (int64_t i = 0; i < m; ++i) d[i] = static_cast<T>(k * (static_cast<double>(a[i]) - static_cast<double>(b[i])));
      return std::vector<Tensor<T>>{dx};
    });
  return y;
}

template <class T>
Tensor<T> mse_loss(const Tensor<T>& x, const Tensor<T>& target) {
  LOWBIT_CHECK(x.numel() > 0, "mse_loss: empty input of shape ", shape_str(x.shape()));
  return squared_error(x, target, 1.0 / static_cast<double>(x.numel()));
}

}  // namespace lowbit
