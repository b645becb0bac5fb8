// Batch normalization for [N, C] and [N, C, H, W] inputs, per channel, with PyTorch's
// conventions: training normalizes with the biased batch variance and updates
//   running_mean = (1 - m) running_mean + m mean,
//   running_var  = (1 - m) running_var  + m var * M / (M - 1)   (unbiased, M = N*H*W);
// evaluation normalizes with the running statistics. Kernels: kernels/batch_norm.hpp.
// With opt.relu the op is relu(batch_norm(x)) in one pass each way; its backward masks the
// incoming gradient by the saved output (y > 0), which the next layer keeps alive anyway.
// Row in docs/gradients.md.
#pragma once
#include <cmath>

#include "../autograd/node.hpp"
#include "../kernels/batch_norm.hpp"

namespace lowbit {

struct BatchNormOptions {
  bool training = true;
  double momentum = 0.1;
  double eps = 1e-5;
  bool relu = false;  // fuse a ReLU after the normalization: y = max(0, BN(x))
};

// gamma/beta: [C] or undefined (no affine). running_mean/var: [C] buffers, updated in place
// in training; may be undefined in training (no tracking) but are required for evaluation.
template <class T>
Tensor<T> batch_norm(const Tensor<T>& x, const Tensor<T>& gamma, const Tensor<T>& beta,
                     Tensor<T> running_mean, Tensor<T> running_var, const BatchNormOptions& opt = {}) {
  LOWBIT_CHECK(x.dim() == 2 || x.dim() == 4, "batch_norm: input must be [N, C] or [N, C, H, W], got ",
               shape_str(x.shape()));
  const int64_t N = x.shape()[0], C = x.shape()[1], S = x.dim() == 4 ? x.shape()[2] * x.shape()[3] : 1;
  for (const Tensor<T>* p : std::initializer_list<const Tensor<T>*>{&gamma, &beta, &running_mean, &running_var})
    LOWBIT_CHECK(!p->defined() || p->shape() == Shape{C}, "batch_norm: parameter of shape ",
                 shape_str(p->shape()), " does not match ", C, " channels of input ", shape_str(x.shape()));
  LOWBIT_CHECK(opt.training || (running_mean.defined() && running_var.defined()),
               "batch_norm: evaluation mode needs running_mean and running_var (input ",
               shape_str(x.shape()), ")");
  LOWBIT_CHECK(!opt.training || N * S > 1, "batch_norm: training needs more than one value per channel, got input ",
               shape_str(x.shape()));
  const kernels::BnShape s{N, C, S};
  Tensor<T> mean = Tensor<T>::empty({C}), istd = Tensor<T>::empty({C});
  if (opt.training) {
    Tensor<T> var = Tensor<T>::empty({C});
    kernels::bn_stats(s, x.data(), mean.data(), var.data());
    const double M = static_cast<double>(N * S), m = opt.momentum;
    for (int64_t c = 0; c < C; ++c) {
      istd.data()[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var.data()[c]) + opt.eps));
      if (running_mean.defined()) {
        T& rm = running_mean.data()[c];
        T& rv = running_var.data()[c];
        rm = static_cast<T>((1 - m) * rm + m * mean.data()[c]);
        rv = static_cast<T>((1 - m) * rv + m * var.data()[c] * M / (M - 1));
      }
    }
  } else {
    for (int64_t c = 0; c < C; ++c) {
      mean.data()[c] = running_mean.data()[c];
      istd.data()[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(running_var.data()[c]) + opt.eps));
    }
  }
  Tensor<T> y = Tensor<T>::empty(x.shape());
  kernels::bn_apply(s, x.data(), mean.data(), istd.data(), gamma.defined() ? gamma.data() : nullptr,
                    beta.defined() ? beta.data() : nullptr, y.data(), opt.relu);
  if (autograd::needs_grad({&x, &gamma, &beta})) {
    autograd::record(
        y, opt.relu ? "batch_norm_relu" : "batch_norm", {&x, &gamma, &beta},
        [xd = x.detach(), gd = gamma.defined() ? gamma.detach() : Tensor<T>(), mean, istd, s,
         yd = opt.relu ? y.detach() : Tensor<T>(),
         batch_stats = opt.training, want_dx = x.requires_grad(),
         want_dg = gamma.defined() && gamma.requires_grad(),
         want_db = beta.defined() && beta.requires_grad(), C](const Tensor<T>& g) {
          Tensor<T> dx = want_dx ? Tensor<T>::empty(xd.shape()) : Tensor<T>();
          Tensor<T> dg = want_dg ? Tensor<T>::zeros({C}) : Tensor<T>();
          Tensor<T> db = want_db ? Tensor<T>::zeros({C}) : Tensor<T>();
          kernels::bn_backward(s, xd.data(), g.data(), mean.data(), istd.data(),
                               gd.defined() ? gd.data() : nullptr, batch_stats,
                               want_dx ? dx.data() : nullptr, want_dg ? dg.data() : nullptr,
                               want_db ? db.data() : nullptr, yd.defined() ? yd.data() : nullptr);
          return std::vector<Tensor<T>>{dx, dg, db};
        });
  }
  return y;
}

}  // namespace lowbit
