// Weight initialization. Fan-in is the number of inputs feeding one output
// (in_channels * kh * kw for a conv, in_features for a linear layer).
#pragma once
#include <cmath>

#include "module.hpp"

namespace lowbit {
namespace nn {

// He et al. 2015: N(0, 2 / fan_in), the ReLU gain — what ResNet-for-CIFAR code uses for convs.
inline Tensorf kaiming_normal(const Shape& shape, int64_t fan_in, Generator& gen) {
  return Tensorf::randn(shape, gen, 0.0, std::sqrt(2.0 / static_cast<double>(fan_in)));
}

// PyTorch's default for nn.Linear weights and biases (kaiming_uniform with a = sqrt(5)):
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
inline Tensorf fan_in_uniform(const Shape& shape, int64_t fan_in, Generator& gen) {
  const double b = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return Tensorf::uniform(shape, gen, -b, b);
}

}  // namespace nn
}  // namespace lowbit
