// VDSR (Kim, Lee & Lee, "Accurate image super-resolution using very deep convolutional
// networks", CVPR 2016): `depth` 3x3 convolutions of `width` channels with a ReLU after each
// but the last, no batch-norm, zero padding so every layer keeps the image size, and a global
// residual connection: the network predicts the residual r = HR - ILR and returns
// ILR + r (VDSR Sec. 3.1). The input is the bicubic-upscaled luma (ILR), N x 1 x H x W, any
// H x W. Paper: depth 20, width 64 (665,921 weights and biases).
//
// Layer roles for a quantization method (nn/factory.hpp): the first conv (1 -> width) is
// First, the last (width -> 1) is Last, the depth - 2 in between are Middle -- so the
// methods' default policy keeps the first and last layers in full precision, as the SLB
// paper's binarized VDSR does (Sec. 4.3; issue 30). Every conv has a bias, as VDSR's Caffe
// model; the weights are He-normal (VDSR Sec. 4.1, the factory's default for convs) and the
// biases start at zero as in the Caffe model.
#pragma once
#include <memory>
#include <string>

#include "../autograd/grad_mode.hpp"
#include "../ops/activation.hpp"
#include "../ops/binary.hpp"
#include "factory.hpp"

namespace lowbit {
namespace nn {

class Vdsr : public Module {
 public:
  Vdsr(int64_t depth, int64_t width, const LayerFactory& f, Generator& gen) {
    LOWBIT_CHECK(depth >= 2 && width >= 1, "Vdsr: depth ", depth, " and width ", width,
                 " (expected depth >= 2 convolutions and width >= 1 channels)");
    auto b = std::make_shared<Sequential>();
    for (int64_t l = 0; l < depth; ++l) {
      const LayerRole role = l == 0 ? LayerRole::First : l == depth - 1 ? LayerRole::Last : LayerRole::Middle;
      b->push_back(f.conv({l == 0 ? 1 : width, l == depth - 1 ? 1 : width, 3, 1, 1, true, role}, gen));
      if (l < depth - 1) b->push_back(std::make_shared<ReLU>());
    }
    body = register_module("body", b);
    NoGradGuard no_grad;  // an in-place change of parameters
    for (auto& [name, p] : named_parameters())  // Caffe's constant-0 bias filler (the factory's is PyTorch's)
      if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0) p.fill_(0.0f);
  }
  // ILR + residual (VDSR Sec. 3.1).
  Tensorf forward(const Tensorf& x) override {
    LOWBIT_CHECK(x.dim() == 4 && x.shape()[1] == 1, "Vdsr: expected a N x 1 x H x W luma batch, got ",
                 shape_str(x.shape()));
    return add(x, (*body)(x));
  }
  std::string type_name() const override { return "Vdsr"; }

  std::shared_ptr<Sequential> body;
};

inline std::shared_ptr<Vdsr> vdsr(Generator& gen, const LayerFactory& f = LayerFactory::fp32(), int64_t depth = 20,
                                  int64_t width = 64) {
  return std::make_shared<Vdsr>(depth, width, f, gen);
}

}  // namespace nn
}  // namespace lowbit
