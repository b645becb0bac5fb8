// Batch-norm kernels on [N, C, S] data (S = H*W, or 1 for 2-d inputs), one channel at a
// time, threads across channels. The fast versions accumulate each contiguous plane in T
// and the planes in double; `omp simd reduction` lets the compiler keep several partial
// sums in vector registers (a plain float sum may not be reordered without it). The
// reference twins are plain double loops.
//
// Forward (training): mean_c, var_c = biased batch statistics; y = gamma (x - mean) istd + beta
// with istd = 1 / sqrt(var + eps). Backward, with xhat = (x - mean) istd and M = N*S:
//   dbeta  = sum dy,  dgamma = sum dy xhat,
//   dx     = gamma istd / M (M dy - dbeta - xhat dgamma)          (training: batch stats)
//   dx     = gamma istd dy                                        (eval: running stats)
#pragma once
#include <cmath>
#include <cstdint>

#include "parallel.hpp"

namespace lowbit {
namespace kernels {

struct BnShape {
  int64_t N, C, S;  // batch, channels, spatial size per channel plane
};

// Batch statistics: mean[c], var[c] (biased). ASSIGNS mean and var.
// One trip through memory: each plane (at most a few KB, so it stays in L1) gets its own
// mean and centered sum of squares in two cheap passes, and the planes are merged with
// Chan et al.'s pairwise update, M2 = M2_a + M2_b + d^2 n_a n_b / (n_a + n_b) — no
// E[x^2] - E[x]^2 cancellation. S may be double (synchronized batch-norm merges the
// statistics of several processes' shards before rounding them to T).
template <class T, class S>
void bn_stats(const BnShape& s, const T* x, S* mean, S* var) {
#pragma omp parallel for if (s.N * s.C * s.S > kParallelGrain)
  for (int64_t c = 0; c < s.C; ++c) {
    double n_acc = 0, mu_acc = 0, m2_acc = 0;
    for (int64_t n = 0; n < s.N; ++n) {
      const T* p = x + (n * s.C + c) * s.S;
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < s.S; ++i) sum += p[i];
      const T mu_p = sum / static_cast<T>(s.S);
      T sq = 0;
#pragma omp simd reduction(+ : sq)
      for (int64_t i = 0; i < s.S; ++i) sq += (p[i] - mu_p) * (p[i] - mu_p);
      const double nb = static_cast<double>(s.S), d = static_cast<double>(mu_p) - mu_acc;
      const double n_new = n_acc + nb;
      mu_acc += d * nb / n_new;
      m2_acc += static_cast<double>(sq) + d * d * n_acc * nb / n_new;
      n_acc = n_new;
    }
    mean[c] = static_cast<S>(mu_acc);
    var[c] = static_cast<S>(m2_acc / n_acc);
  }
}

// Chan et al.'s update of channel statistics (count n, mean mu, sum of squared deviations m2)
// with another part's (nb, mub, m2b): how the statistics of shards combine into the batch's.
inline void merge_moments(double& n, double& mu, double& m2, double nb, double mub, double m2b) {
  const double n_new = n + nb, d = mub - mu;
  if (n_new == 0) return;
  mu += d * nb / n_new;
  m2 += m2b + d * d * n * nb / n_new;
  n = n_new;
}

// y = gamma[c] (x - mean[c]) istd[c] + beta[c]; gamma/beta may be nullptr (1 and 0).
// ASSIGNS y. Folded into one multiply-add per element: y = x a + b. With relu, y is
// clamped at 0 in the same pass (BN followed by ReLU costs one trip through memory).
template <class T>
void bn_apply(const BnShape& s, const T* x, const T* mean, const T* istd, const T* gamma,
              const T* beta, T* y, bool relu = false) {
#pragma omp parallel for collapse(2) if (s.N * s.C * s.S > kParallelGrain)
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t c = 0; c < s.C; ++c) {
      const T a = (gamma ? gamma[c] : T(1)) * istd[c];
      const T b = (beta ? beta[c] : T(0)) - mean[c] * a;
      const T* px = x + (n * s.C + c) * s.S;
      T* py = y + (n * s.C + c) * s.S;
      if (relu) {
        for (int64_t i = 0; i < s.S; ++i) {
          const T v = px[i] * a + b;
          py[i] = v > T(0) ? v : T(0);
        }
      } else {
        for (int64_t i = 0; i < s.S; ++i) py[i] = px[i] * a + b;
      }
    }
}

// The ReLU mask applied to an incoming gradient: dy where the fused output y > 0, else 0.
template <class T>
inline T relu_masked(const T* dy, const T* y_relu, int64_t k) {
  return y_relu == nullptr || y_relu[k] > T(0) ? dy[k] : T(0);
}

// Backward, one channel at a time, in two halves. The first sums over the channel:
// sdy = sum dy, sdyx = sum dy (x - mean) (not yet times istd). The second writes dgamma and
// dbeta from this process's sums and dx from the sums over the whole batch and its value
// count M. bn_backward runs both per channel, where the two sets of sums are the same;
// synchronized batch-norm (ops/batch_norm.hpp) adds up every process's sums for dx, while
// dgamma and dbeta stay this process's part (the gradient all-reduce adds those).
// y_relu: the output of a fused BN+ReLU (bn_apply with relu), or nullptr. When given, dy is
// first masked by y > 0 — the ReLU backward — without materializing the masked gradient.
template <class T>
void bn_channel_sums(const BnShape& s, int64_t c, const T* x, const T* dy, T mu, const T* y_relu, double& sdy,
                     double& sdyx) {
  sdy = 0, sdyx = 0;
  for (int64_t n = 0; n < s.N; ++n) {
    const T* px = x + (n * s.C + c) * s.S;
    const T* pg = dy + (n * s.C + c) * s.S;
    const T* pr = y_relu ? y_relu + (n * s.C + c) * s.S : nullptr;
    T a = 0, b = 0;
    if (pr) {
#pragma omp simd reduction(+ : a, b)
      for (int64_t i = 0; i < s.S; ++i) {
        const T g = pr[i] > T(0) ? pg[i] : T(0);
        a += g;
        b += g * (px[i] - mu);
      }
    } else {
#pragma omp simd reduction(+ : a, b)
      for (int64_t i = 0; i < s.S; ++i) {
        a += pg[i];
        b += pg[i] * (px[i] - mu);
      }
    }
    sdy += a;
    sdyx += b;
  }
}

// ASSIGNS dx[channel c] (when non-null); ADDS into dgamma[c] and dbeta[c] (when non-null).
// sdy, sdyx: this process's sums; sdy_all, sdyx_all: the whole batch's, over M values.
// batch_stats selects the training formula (gradient through mean and var) or the eval one.
template <class T>
void bn_channel_grads(const BnShape& s, int64_t c, const T* x, const T* dy, T mu, T is, const T* gamma,
                      bool batch_stats, double sdy, double sdyx, double sdy_all, double sdyx_all, double M, T* dx,
                      T* dgamma, T* dbeta, const T* y_relu) {
  if (dgamma) dgamma[c] += static_cast<T>(sdyx * is);
  if (dbeta) dbeta[c] += static_cast<T>(sdy);
  if (!dx) return;
  sdyx_all *= is;
  const T g = gamma ? gamma[c] : T(1);
  // dx = k1 dy - k2 - k3 (x - mu), folding the constants of the formula above.
  const T k1 = g * is;
  const T k2 = batch_stats ? static_cast<T>(g * is * sdy_all / M) : T(0);
  const T k3 = batch_stats ? static_cast<T>(g * is * is * sdyx_all / M) : T(0);
  for (int64_t n = 0; n < s.N; ++n) {
    const T* px = x + (n * s.C + c) * s.S;
    const T* pg = dy + (n * s.C + c) * s.S;
    T* pd = dx + (n * s.C + c) * s.S;
    if (y_relu) {
      const T* pr = y_relu + (n * s.C + c) * s.S;
      for (int64_t i = 0; i < s.S; ++i) pd[i] = k1 * (pr[i] > T(0) ? pg[i] : T(0)) - k2 - k3 * (px[i] - mu);
    } else {
      for (int64_t i = 0; i < s.S; ++i) pd[i] = k1 * pg[i] - k2 - k3 * (px[i] - mu);
    }
  }
}

// Backward of one process's batch. ASSIGNS dx (when non-null); ADDS into dgamma and dbeta.
template <class T>
void bn_backward(const BnShape& s, const T* x, const T* dy, const T* mean, const T* istd,
                 const T* gamma, bool batch_stats, T* dx, T* dgamma, T* dbeta,
                 const T* y_relu = nullptr) {
  const double M = static_cast<double>(s.N * s.S);
#pragma omp parallel for if (s.N * s.C * s.S > kParallelGrain)
  for (int64_t c = 0; c < s.C; ++c) {
    double sdy = 0, sdyx = 0;
    bn_channel_sums(s, c, x, dy, mean[c], y_relu, sdy, sdyx);
    bn_channel_grads(s, c, x, dy, mean[c], istd[c], gamma, batch_stats, sdy, sdyx, sdy, sdyx, M, dx, dgamma, dbeta,
                     y_relu);
  }
}

// ---- reference twins: the formulas above, literally, in double -------------------------

template <class T>
void bn_stats_reference(const BnShape& s, const T* x, T* mean, T* var) {
  for (int64_t c = 0; c < s.C; ++c) {
    double sum = 0, sq = 0;
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.S; ++i) sum += x[(n * s.C + c) * s.S + i];
    const double mu = sum / static_cast<double>(s.N * s.S);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.S; ++i) {
        const double d = x[(n * s.C + c) * s.S + i] - mu;
        sq += d * d;
      }
    mean[c] = static_cast<T>(mu);
    var[c] = static_cast<T>(sq / static_cast<double>(s.N * s.S));
  }
}

template <class T>
void bn_backward_reference(const BnShape& s, const T* x, const T* dy, const T* mean,
                           const T* istd, const T* gamma, bool batch_stats, T* dx, T* dgamma,
                           T* dbeta, const T* y_relu = nullptr) {
  const double M = static_cast<double>(s.N * s.S);
  for (int64_t c = 0; c < s.C; ++c) {
    double sdy = 0, sdyx = 0;
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.S; ++i) {
        const int64_t k = (n * s.C + c) * s.S + i;
        const double g = relu_masked(dy, y_relu, k);
        sdy += g;
        sdyx += g * (x[k] - static_cast<double>(mean[c])) * istd[c];
      }
    if (dgamma) dgamma[c] += static_cast<T>(sdyx);
    if (dbeta) dbeta[c] += static_cast<T>(sdy);
    if (!dx) continue;
    const double g = gamma ? gamma[c] : 1.0;
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.S; ++i) {
        const int64_t k = (n * s.C + c) * s.S + i;
        const double xhat = (x[k] - static_cast<double>(mean[c])) * istd[c];
        const double gk = relu_masked(dy, y_relu, k);
        dx[k] = static_cast<T>(batch_stats ? g * istd[c] / M * (M * gk - sdy - xhat * sdyx)
                                           : g * istd[c] * gk);
      }
  }
}

}  // namespace kernels
}  // namespace lowbit
