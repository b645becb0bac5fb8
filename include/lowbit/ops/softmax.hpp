// softmax, log_softmax over an axis, and cross-entropy from logits and knowledge distillation's
// KL loss, each with a fused backward.
// All subtract the row maximum first, so exp never overflows. Rows in docs/gradients.md.
#pragma once
#include <cmath>
#include <vector>

#include "../autograd/node.hpp"
#include "../kernels/parallel.hpp"

namespace lowbit {

namespace kernels {
// View of an axis as [outer, len, inner]: element (o, i, k) at (o * len + i) * inner + k.
struct AxisShape {
  int64_t outer, len, inner;
};
inline AxisShape axis_shape(const Shape& s, int64_t axis) {
  AxisShape a{1, s[static_cast<size_t>(axis)], 1};
  for (int64_t d = 0; d < axis; ++d) a.outer *= s[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < s.size(); ++d) a.inner *= s[d];
  return a;
}

// y = softmax or log_softmax of x along the axis. ASSIGNS y.
template <class T>
void softmax_forward(const AxisShape& a, const T* x, T* y, bool log) {
#pragma omp parallel for collapse(2) if (a.outer * a.len * a.inner > kParallelGrain)
  for (int64_t o = 0; o < a.outer; ++o)
    for (int64_t k = 0; k < a.inner; ++k) {
      const T* px = x + o * a.len * a.inner + k;
      T* py = y + o * a.len * a.inner + k;
      T m = px[0];
      for (int64_t i = 1; i < a.len; ++i) m = px[i * a.inner] > m ? px[i * a.inner] : m;
      double z = 0;
      for (int64_t i = 0; i < a.len; ++i) z += std::exp(static_cast<double>(px[i * a.inner] - m));
      const double lz = std::log(z);
      for (int64_t i = 0; i < a.len; ++i) {
        const double l = static_cast<double>(px[i * a.inner] - m) - lz;
        py[i * a.inner] = static_cast<T>(log ? l : std::exp(l));
      }
    }
}
}  // namespace kernels

namespace detail {
template <class T>
Tensor<T> softmax_impl(const Tensor<T>& x, int64_t axis, bool log, const char* op) {
  axis = normalize_axis(axis, x.dim(), op);
  const auto a = kernels::axis_shape(x.shape(), axis);
  Tensor<T> y = Tensor<T>::empty(x.shape());
  kernels::softmax_forward(a, x.data(), y.data(), log);
  if (autograd::needs_grad({&x}))
    autograd::record(y, op, {&x}, [yd = y.detach(), a, log](const Tensor<T>& g) {
      Tensor<T> dx = Tensor<T>::empty(yd.shape());
      const T *py = yd.data(), *pg = g.data();
      T* pd = dx.data();
      for (int64_t o = 0; o < a.outer; ++o)
        for (int64_t k = 0; k < a.inner; ++k) {
          const int64_t base = o * a.len * a.inner + k;
          double dot = 0;  // softmax: sum g y; log_softmax: sum g
          for (int64_t i = 0; i < a.len; ++i)
            dot += log ? pg[base + i * a.inner] : pg[base + i * a.inner] * py[base + i * a.inner];
          for (int64_t i = 0; i < a.len; ++i) {
            const int64_t j = base + i * a.inner;
            pd[j] = log ? static_cast<T>(pg[j] - std::exp(static_cast<double>(py[j])) * dot)
                        : static_cast<T>(py[j] * (pg[j] - dot));
          }
        }
      return std::vector<Tensor<T>>{dx};
    });
  return y;
}
}  // namespace detail

// y_i = exp(x_i) / sum_j exp(x_j) along `axis`.   dx_i = y_i (g_i - sum_j g_j y_j).
template <class T>
Tensor<T> softmax(const Tensor<T>& x, int64_t axis = -1) {
  return detail::softmax_impl(x, axis, false, "softmax");
}

// y_i = x_i - log sum_j exp(x_j) along `axis`.   dx_i = g_i - softmax(x)_i sum_j g_j.
template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, int64_t axis = -1) {
  return detail::softmax_impl(x, axis, true, "log_softmax");
}

// Mean cross-entropy of logits [N, K] against integer labels, with optional label
// smoothing eps (PyTorch's definition: the target is (1 - eps) onehot + eps / K):
//   L = 1/N sum_n [ -(1 - eps) log p_{n, y_n} - eps/K sum_k log p_{n,k} ],  p = softmax(logits).
// Fused backward: dlogits = g / N (p - q), q the smoothed target.
template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const std::vector<int64_t>& labels,
                        double label_smoothing = 0.0) {
  LOWBIT_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, K], got ", shape_str(logits.shape()));
  const int64_t N = logits.shape()[0], K = logits.shape()[1];
  LOWBIT_CHECK(static_cast<int64_t>(labels.size()) == N, "cross_entropy: ", labels.size(),
               " labels for logits of shape ", shape_str(logits.shape()));
  LOWBIT_CHECK(N > 0 && K > 0, "cross_entropy: empty logits of shape ", shape_str(logits.shape()));
  LOWBIT_CHECK(label_smoothing >= 0 && label_smoothing <= 1, "cross_entropy: label_smoothing ",
               label_smoothing, " is outside [0, 1]");
  for (int64_t n = 0; n < N; ++n)
    LOWBIT_CHECK(labels[static_cast<size_t>(n)] >= 0 && labels[static_cast<size_t>(n)] < K,
                 "cross_entropy: label ", labels[static_cast<size_t>(n)], " at position ", n,
                 " is outside [0, ", K, ") for logits of shape ", shape_str(logits.shape()));
  Tensor<T> logp = Tensor<T>::empty(logits.shape());
  kernels::softmax_forward(kernels::AxisShape{N, K, 1}, logits.data(), logp.data(), true);
  const double eps = label_smoothing;
  double loss = 0;
  for (int64_t n = 0; n < N; ++n) {
    const T* row = logp.data() + n * K;
    double all = 0;
    for (int64_t k = 0; k < K; ++k) all += row[k];
    loss += -(1 - eps) * row[labels[static_cast<size_t>(n)]] - eps / static_cast<double>(K) * all;
  }
  Tensor<T> y = Tensor<T>::scalar(static_cast<T>(loss / static_cast<double>(N)));
  if (autograd::needs_grad({&logits}))
    autograd::record(y, "cross_entropy", {&logits}, [logp, labels, N, K, eps](const Tensor<T>& g) {
      Tensor<T> dx = Tensor<T>::empty({N, K});
      const double scale = static_cast<double>(g.item()) / static_cast<double>(N);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
          const double q = eps / static_cast<double>(K) + (k == labels[static_cast<size_t>(n)] ? 1 - eps : 0.0);
          dx.data()[n * K + k] = static_cast<T>(scale * (std::exp(static_cast<double>(logp.data()[n * K + k])) - q));
        }
      return std::vector<Tensor<T>>{dx};
    });
  return y;
}

template <class T>
Tensor<T> cross_entropy(const Tensor<T>& logits, const Tensor<int64_t>& labels, double label_smoothing = 0.0) {
  LOWBIT_CHECK(labels.dim() == 1, "cross_entropy: labels must be 1-d, got ", shape_str(labels.shape()));
  return cross_entropy(logits, labels.to_vector(), label_smoothing);
}

// Knowledge distillation (Hinton et al. 2015): the mean KL divergence from the teacher's
// softened distribution to the student's, scaled by T^2 so that its gradient keeps the size
// of a cross-entropy gradient whatever the temperature (Hinton et al., Sec. 2):
//   L = T^2 / N sum_n sum_k p_{n,k} (log p_{n,k} - log q_{n,k}),
//   p = softmax(teacher / T), q = softmax(student / T), both [N, K].
// The teacher is a fixed target: its logits must not require a gradient.
// Fused backward: dstudent = g T / N (q - p).
template <class T>
Tensor<T> distillation_loss(const Tensor<T>& student, const Tensor<T>& teacher, double temperature) {
  LOWBIT_CHECK(student.dim() == 2 && student.shape() == teacher.shape(), "distillation_loss: student logits ",
               shape_str(student.shape()), " and teacher logits ", shape_str(teacher.shape()),
               " must be the same [N, K]");
  LOWBIT_CHECK(student.numel() > 0, "distillation_loss: empty logits of shape ", shape_str(student.shape()));
  LOWBIT_CHECK(temperature > 0, "distillation_loss: temperature ", temperature, " must be > 0");
  LOWBIT_CHECK(!teacher.requires_grad(), "distillation_loss: the teacher's logits require a gradient; "
               "compute them under NoGradGuard (the teacher is a fixed target)");
  const int64_t N = student.shape()[0], K = student.shape()[1];
  const kernels::AxisShape rows{N, K, 1};
  const T inv_t = static_cast<T>(1.0 / temperature);
  Tensor<T> logq = Tensor<T>::empty(student.shape()), logp = Tensor<T>::empty(student.shape());
  {
    Tensor<T> s = Tensor<T>::empty(student.shape()), t = Tensor<T>::empty(student.shape());
    for (int64_t i = 0; i < N * K; ++i) {
      s.data()[i] = student.data()[i] * inv_t;
      t.data()[i] = teacher.data()[i] * inv_t;
    }
    kernels::softmax_forward(rows, s.data(), logq.data(), true);
    kernels::softmax_forward(rows, t.data(), logp.data(), true);
  }
  double kl = 0;
  for (int64_t i = 0; i < N * K; ++i) {
    const double lp = logp.data()[i];
    kl += std::exp(lp) * (lp - static_cast<double>(logq.data()[i]));
  }
  Tensor<T> y = Tensor<T>::scalar(static_cast<T>(temperature * temperature * kl / static_cast<double>(N)));
  if (autograd::needs_grad({&student}))
    autograd::record(y, "distillation_loss", {&student}, [logq, logp, N, K, temperature](const Tensor<T>& g) {
      Tensor<T> dx = Tensor<T>::empty({N, K});
      const double scale = static_cast<double>(g.item()) * temperature / static_cast<double>(N);
      for (int64_t i = 0; i < N * K; ++i)
        dx.data()[i] = static_cast<T>(scale * (std::exp(static_cast<double>(logq.data()[i])) -
                                                std::exp(static_cast<double>(logp.data()[i]))));
      return std::vector<Tensor<T>>{dx};
    });
  return y;
}

}  // namespace lowbit
