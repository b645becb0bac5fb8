// Batch normalization for [N, C] and [N, C, H, W] inputs, per channel, with PyTorch's
// conventions: training normalizes with the biased batch variance and updates
//   running_mean = (1 - m) running_mean + m mean,
//   running_var  = (1 - m) running_var  + m var * M / (M - 1)   (unbiased, M = N*H*W);
// evaluation normalizes with the running statistics. Kernels: kernels/batch_norm.hpp.
// With opt.relu the op is relu(batch_norm(x)) in one pass each way; its backward masks the
// incoming gradient by the saved output (y > 0), which the next layer keeps alive anyway.
// Synchronized (opt.sync, a dist::Communicator of several processes that each hold a shard
// of one batch; docs/distributed.md): the batch statistics are those of the whole batch,
// merged from every shard's with Chan's update in rank order, and the backward sums
// (sum dy, sum dy xhat) that dx needs are added up over the shards; dgamma and dbeta stay
// this shard's part, which the gradient all-reduce adds like every other parameter's. Each
// process's loss must be its share of the whole batch's loss (dist/data_parallel.hpp).
// Row in docs/gradients.md.
#pragma once
#include <cmath>
#include <vector>

#include "../autograd/node.hpp"
#include "../dist/communicator.hpp"
#include "../kernels/batch_norm.hpp"

namespace lowbit {

struct BatchNormOptions {
  bool training = true;
  double momentum = 0.1;
  double eps = 1e-5;
  bool relu = false;  // fuse a ReLU after the normalization: y = max(0, BN(x))
  // Training statistics over the shards of every process of this communicator (null or one
  // process: this batch alone). Must outlive the backward pass.
  const dist::Communicator* sync = nullptr;
};

namespace detail {
// The whole batch's mean and biased variance per channel from every process's shard
// (ASSIGNS mean, var); returns the batch's value count per channel.
template <class T>
double synced_bn_stats(const dist::Communicator& comm, const kernels::BnShape& s, const T* x, T* mean, T* var) {
  const size_t C = static_cast<size_t>(s.C), P = static_cast<size_t>(comm.size());
  std::vector<double> mine(1 + 2 * C), all((1 + 2 * C) * P);
  mine[0] = static_cast<double>(s.N * s.S);
  kernels::bn_stats(s, x, mine.data() + 1, mine.data() + 1 + C);
  comm.gather_all(mine.data(), mine.size(), all.data());
  double total = 0;
  for (size_t c = 0; c < C; ++c) {
    double n = 0, mu = 0, m2 = 0;
    for (size_t r = 0; r < P; ++r) {  // rank order: every process merges in the same order
      const double* p = all.data() + r * (1 + 2 * C);
      kernels::merge_moments(n, mu, m2, p[0], p[1 + c], p[1 + C + c] * p[0]);
    }
    mean[c] = static_cast<T>(mu);
    var[c] = static_cast<T>(m2 / n);
    total = n;
  }
  return total;
}
}  // namespace detail

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
  const dist::Communicator* sync = opt.training && opt.sync && opt.sync->size() > 1 ? opt.sync : nullptr;
  double M = static_cast<double>(N * S);  // values per channel in the batch (all shards' when synced)
  if (opt.training) {
    Tensor<T> var = Tensor<T>::empty({C});
    if (sync) M = detail::synced_bn_stats(*sync, s, x.data(), mean.data(), var.data());
    else kernels::bn_stats(s, x.data(), mean.data(), var.data());
    const double m = opt.momentum;
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
        [xd = x.detach(), gd = gamma.defined() ? gamma.detach() : Tensor<T>(), mean, istd, s, sync, M,
         yd = opt.relu ? y.detach() : Tensor<T>(),
         batch_stats = opt.training, want_dx = x.requires_grad(),
         want_dg = gamma.defined() && gamma.requires_grad(),
         want_db = beta.defined() && beta.requires_grad(), C](const Tensor<T>& g) {
          Tensor<T> dx = want_dx ? Tensor<T>::empty(xd.shape()) : Tensor<T>();
          Tensor<T> dg = want_dg ? Tensor<T>::zeros({C}) : Tensor<T>();
          Tensor<T> db = want_db ? Tensor<T>::zeros({C}) : Tensor<T>();
          const T* yr = yd.defined() ? yd.data() : nullptr;
          const T* gp = gd.defined() ? gd.data() : nullptr;
          if (!sync) {
            kernels::bn_backward(s, xd.data(), g.data(), mean.data(), istd.data(), gp, batch_stats,
                                 want_dx ? dx.data() : nullptr, want_dg ? dg.data() : nullptr,
                                 want_db ? db.data() : nullptr, yr);
          } else {  // this shard's sums, then the whole batch's for dx (see the top)
            std::vector<double> local(2 * static_cast<size_t>(C)), all;
#pragma omp parallel for if (s.N * s.C * s.S > kParallelGrain)
            for (int64_t c = 0; c < C; ++c)
              kernels::bn_channel_sums(s, c, xd.data(), g.data(), mean.data()[c], yr, local[static_cast<size_t>(c)],
                                       local[static_cast<size_t>(C + c)]);
            all = local;
            sync->sum(all.data(), all.size());
#pragma omp parallel for if (s.N * s.C * s.S > kParallelGrain)
            for (int64_t c = 0; c < C; ++c) {
              const size_t i = static_cast<size_t>(c), j = static_cast<size_t>(C + c);
              kernels::bn_channel_grads(s, c, xd.data(), g.data(), mean.data()[c], istd.data()[c], gp, true, local[i],
                                        local[j], all[i], all[j], M, want_dx ? dx.data() : nullptr,
                                        want_dg ? dg.data() : nullptr, want_db ? db.data() : nullptr, yr);
            }
          }
          return std::vector<Tensor<T>>{dx, dg, db};
        });
  }
  return y;
}

}  // namespace lowbit
