// Gradient clipping, applied between backward() and the optimizer's step.
//   clip_grad_value(params, bound)  every gradient element into [-bound, bound]
//   clip_grad_norm(params, max)     all gradients scaled by min(1, max / ||g||), ||g|| the L2
//                                   norm of all of them together (PyTorch's clip_grad_norm_)
// VDSR's "adjustable gradient clipping" (Kim et al. 2016, Sec. 3.3) is clip_grad_value with
// bound = theta / lr at the current learning rate lr: the step lr * g of any weight is then at
// most theta, so a high learning rate can be used without the gradients exploding.
// Both return what they saw (the largest |g| element, or the norm before scaling) for the log.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace lowbit {
namespace optim {

inline double clip_grad_value(const std::vector<Tensor<float>>& params, double bound) {
  LOWBIT_CHECK(bound > 0, "clip_grad_value: bound ", bound, " must be > 0");
  const float b = static_cast<float>(bound);
  double largest = 0;
  for (const Tensor<float>& p : params) {
    Tensor<float> g = p.grad();
    if (!g.defined()) continue;
    float* d = g.data();
    for (int64_t i = 0; i < g.numel(); ++i) {
      largest = std::max(largest, static_cast<double>(std::fabs(d[i])));
      d[i] = std::min(std::max(d[i], -b), b);
    }
  }
  return largest;
}

inline double clip_grad_norm(const std::vector<Tensor<float>>& params, double max_norm) {
  LOWBIT_CHECK(max_norm > 0, "clip_grad_norm: max_norm ", max_norm, " must be > 0");
  double sq = 0;
  for (const Tensor<float>& p : params) {
    const Tensor<float> g = p.grad();
    if (!g.defined()) continue;
    for (int64_t i = 0; i < g.numel(); ++i) sq += static_cast<double>(g.data()[i]) * g.data()[i];
  }
  const double norm = std::sqrt(sq);
  if (norm > max_norm) {
    const float k = static_cast<float>(max_norm / norm);
    for (const Tensor<float>& p : params) {
      Tensor<float> g = p.grad();
      if (!g.defined()) continue;
      for (int64_t i = 0; i < g.numel(); ++i) g.data()[i] *= k;
    }
  }
  return norm;
}

}  // namespace optim
}  // namespace lowbit
