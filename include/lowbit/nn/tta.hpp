// Test-time augmentation by horizontal flip: the class probabilities of an NCHW batch,
// averaged over each image and its left-right mirror.
//
// Why: training samples the mirror of every image with probability 1/2 (data/augment.hpp),
// so the network has learned both orientations, and its errors on the two are not the same.
// Averaging the two predictions is the cheapest test-time ensemble (two forwards), used in
// CIFAR papers as "flip TTA"; its result is, by construction, the same for an image and its
// mirror. Probabilities, not logits, are averaged, so that the output is itself a
// distribution whose -log at the label is a cross-entropy.
//
// Evaluation only: it runs the model as it is (call model.eval() first for running BN
// statistics) under no_grad, so no graph is recorded.
#pragma once
#include "../autograd/grad_mode.hpp"
#include "../ops/binary.hpp"
#include "../ops/shape.hpp"
#include "../ops/softmax.hpp"
#include "module.hpp"

namespace lowbit {
namespace nn {

// p = (softmax(model(x)) + softmax(model(flip(x, 3)))) / 2, shape [N, classes].
inline Tensor<float> flip_tta_probs(Module& model, const Tensor<float>& x) {
  LOWBIT_CHECK(x.dim() == 4, "flip_tta_probs: expected an NCHW batch, got shape ", shape_str(x.shape()));
  NoGradGuard no_grad;
  Tensor<float> p = softmax(model(x), 1);
  Tensor<float> q = softmax(model(flip(x, 3)), 1);
  return (p + q) * 0.5f;
}

}  // namespace nn
}  // namespace lowbit
