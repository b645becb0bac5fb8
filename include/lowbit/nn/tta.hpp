// Test-time augmentation by horizontal flip: the log class probabilities of an NCHW batch,
// with each image's probabilities averaged over the image and its left-right mirror.
//
// Why: training samples the mirror of every image with probability 1/2 (data/augment.hpp),
// so the network has learned both orientations, and its errors on the two are not the same
// (it is not mirror-equivariant: stride-2 convolutions and option-A subsampling read the even
// columns of an image and the odd columns of its mirror). Averaging the two predictions is the
// cheapest test-time ensemble (two forwards), used in CIFAR papers as "flip TTA"; its result
// is, by construction, the same for an image and its mirror. Probabilities, not logits, are
// averaged, so the result is itself a distribution and -log of it at the label is a
// cross-entropy.
//
// Returned as log probabilities, log((p + q) / 2) = logaddexp(log p, log q) - log 2 from the
// two log-softmaxes, so a class whose probability underflows float in both views still has a
// finite loss (exp then log would give -inf).
//
// Evaluation only: it runs the model as it is (call model.eval() first for running BN
// statistics) under no_grad, so no graph is recorded.
#pragma once
#include <algorithm>
#include <cmath>
#include <utility>

#include "../autograd/grad_mode.hpp"
#include "../ops/binary.hpp"
#include "../ops/shape.hpp"
#include "../ops/softmax.hpp"
#include "module.hpp"

namespace lowbit {
namespace nn {

// The two views' log-softmaxes at temperature T, each [N, classes]: first of x, second of
// its mirror flip(x, 3).
inline std::pair<Tensor<float>, Tensor<float>> flip_views_log_softmax(Module& model, const Tensor<float>& x,
                                                                      double temperature = 1.0) {
  LOWBIT_CHECK(x.dim() == 4, "flip TTA: expected an NCHW batch, got shape ", shape_str(x.shape()));
  LOWBIT_CHECK(temperature > 0, "flip TTA: temperature ", temperature, " must be > 0");
  NoGradGuard no_grad;
  const float inv_t = static_cast<float>(1.0 / temperature);
  return {log_softmax(model(x) * inv_t, 1), log_softmax(model(flip(x, 3)) * inv_t, 1)};
}

// log((exp(a) + exp(b)) / 2) elementwise: the log of the mean of two distributions given as
// log probabilities, computed as logaddexp(a, b) - log 2.
inline Tensor<float> log_mean_probs(const Tensor<float>& a, const Tensor<float>& b) {
  LOWBIT_CHECK(a.shape() == b.shape(), "log_mean_probs: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
               " differ");
  Tensor<float> out = Tensor<float>::empty(a.shape());
  const float* pa = a.data();
  const float* pb = b.data();
  float* po = out.data();
  const double log2 = std::log(2.0);
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double hi = std::max(pa[i], pb[i]), lo = std::min(pa[i], pb[i]);
    po[i] = static_cast<float>(hi + std::log1p(std::exp(lo - hi)) - log2);
  }
  return out;
}

// log((softmax(model(x) / T) + softmax(model(flip(x, 3)) / T)) / 2), shape [N, classes].
// temperature T = 1 scores test images; T > 1 gives knowledge distillation's softened
// targets of a flip-averaged teacher (train_cifar's kd_teacher_tta).
inline Tensor<float> flip_tta_log_probs(Module& model, const Tensor<float>& x, double temperature = 1.0) {
  const auto views = flip_views_log_softmax(model, x, temperature);
  return log_mean_probs(views.first, views.second);
}

}  // namespace nn
}  // namespace lowbit
